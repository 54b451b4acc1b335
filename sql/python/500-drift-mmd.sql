-- Drift (PL/Python, numpy): maximum mean discrepancy between two vector samples, used by
-- mlops.run_drift_monitor for vector columns when pgmlops_python is installed.

-- Unbiased MMD^2 with an RBF kernel exp(-|x - y|^2 / (2 sigma^2)), sigma = median pairwise
-- distance of the pooled sample (median heuristic), and a permutation p-value
-- (1 + #{permuted MMD^2 >= observed}) / (1 + permutations) with a fixed seed (reproducible).
-- reference and current are 2-D arrays (one row per vector) of the same width.
create or replace function mlops.mmd_rbf(reference real[], current real[], permutations integer default 200,
                                         out mmd2 double precision, out p_value double precision,
                                         out bandwidth double precision)
language plpython3u immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
import numpy as np
def as_matrix(value, name):
    if value is None or len(value) == 0:
        plpy.error(f"{name} is empty: at least two vectors are needed", sqlstate="22023")
    try:
        m = np.asarray(value, dtype=np.float64)
    except ValueError:
        plpy.error(f"{name} must be a 2-D array of equal-length vectors", sqlstate="22023")
    if m.ndim == 1:
        m = m.reshape(-1, 1)
    if m.ndim != 2 or m.shape[0] < 2:
        plpy.error(f"{name} must be a 2-D array with at least two vectors", sqlstate="22023")
    if not np.isfinite(m).all():
        plpy.error(f"{name} contains NaN or infinite values", sqlstate="22023")
    return m
x = as_matrix(reference, "reference")
y = as_matrix(current, "current")
if x.shape[1] != y.shape[1]:
    plpy.error(f"reference vectors have dimension {x.shape[1]} but current vectors {y.shape[1]}", sqlstate="22023")
if permutations is None or permutations < 0 or permutations > 10000:
    plpy.error(f"permutations must be between 0 and 10000, got {permutations}", sqlstate="22023")
z = np.vstack([x, y])
sq = np.sum(z * z, axis=1)
d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)
iu = np.triu_indices(len(z), 1)
sigma = float(np.median(np.sqrt(d2[iu])))
if sigma <= 0:
    sigma = 1.0
k = np.exp(-d2 / (2.0 * sigma * sigma))
n, m = len(x), len(y)
total = k.sum()
def stats_for(ind):
    # ind: (n + m) x B indicator matrix of the x-sample; the diagonal of K is 1
    kp = k @ ind
    sxx = np.einsum("ij,ij->j", ind, kp)
    sxy = np.einsum("ij,ij->j", 1.0 - ind, kp)
    syy = total - 2.0 * sxy - sxx
    return (sxx - n) / (n * (n - 1)) + (syy - m) / (m * (m - 1)) - 2.0 * sxy / (n * m)
first = np.zeros((n + m, 1)); first[:n, 0] = 1.0
observed = float(stats_for(first)[0])
rng = np.random.default_rng(0)
count = 0
done = 0
while done < permutations:
    b = min(50, permutations - done)
    ind = np.zeros((n + m, b))
    for j in range(b):
        ind[rng.permutation(n + m)[:n], j] = 1.0
    count += int(np.sum(stats_for(ind) >= observed - 1e-15))
    done += b
return observed, (1.0 + count) / (1.0 + permutations), sigma
$$;
comment on function mlops.mmd_rbf(real[], real[], integer) is
  'Unbiased MMD^2 between two 2-D vector samples (RBF kernel, median-heuristic bandwidth) with a permutation p-value.';

grant execute on function mlops.mmd_rbf(real[], real[], integer) to mlops_reader;
