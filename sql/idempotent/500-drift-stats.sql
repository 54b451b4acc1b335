-- Drift statistics over arrays: KS, PSI, Jensen-Shannon, Wasserstein, chi-square, Z-test.
-- Pure SQL/PL/pgSQL so they run on managed PostgreSQL; each one is checked against scipy
-- (tests/test_drift_stats.py) to 1e-9 on the same data. NULL array elements are ignored
-- (missing values); NaN is rejected with SQLSTATE 22023 naming the argument; empty input
-- is rejected with 22023 (scipy raises ValueError there too).

-- Private: validates a float8[] sample (not null, not empty after dropping NULLs, no NaN).
create or replace function mlops._check_sample(sample double precision[], argument text) returns bigint
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
  nans bigint;
begin
  select pg_catalog.count(x), pg_catalog.count(*) filter (where x = 'NaN'::float8)
    into n, nans from pg_catalog.unnest(sample) x;
  if sample is null or n = 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('%s is empty: at least one non-null value is needed', argument);
  end if;
  if nans > 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('%s contains %s NaN value(s)', argument, nans),
      hint = 'Filter NaN out (or map it to NULL) before computing drift statistics.';
  end if;
  return n;
end
$$;
comment on function mlops._check_sample(double precision[], text) is
  'Private: raises 22023 naming the argument when a sample is empty (after dropping NULLs) or contains NaN; returns its size.';

-- Private: ln Gamma(a) for a a positive multiple of 1/2 (exact sums of logs: the chi-square
-- degrees of freedom only ever give such arguments).
create or replace function mlops._lgamma_half(a double precision) returns double precision
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  r double precision := 0;
  x double precision := a;
begin
  if a <= 0 or a * 2 <> pg_catalog.floor(a * 2) then
    raise exception using errcode = '22023', message = pg_catalog.format('a must be a positive multiple of 0.5, got %s', a);
  end if;
  while x > 1.0 loop  -- Gamma(x) = (x-1) Gamma(x-1)
    x := x - 1.0;
    r := r + pg_catalog.ln(x);
  end loop;
  if x = 0.5 then
    r := r + 0.5 * pg_catalog.ln(pg_catalog.pi());
  end if;
  return r;
end
$$;
comment on function mlops._lgamma_half(double precision) is 'Private: log Gamma of a positive multiple of 1/2.';

-- Private: regularized upper incomplete gamma Q(a, x) (series below a+1, Lentz continued
-- fraction above), used for chi-square and normal tail probabilities.
create or replace function mlops._gammaq(a double precision, x double precision) returns double precision
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  gln double precision := mlops._lgamma_half(a);
  ap double precision; s double precision; del double precision;
  b double precision; c double precision; d double precision; h double precision; an double precision;
  i integer;
  tiny constant double precision := 1e-300;
begin
  if x <= 0 then
    return 1.0;
  end if;
  if x = 'Infinity'::float8 then
    return 0.0;
  end if;
  if x < a + 1.0 then
    ap := a; s := 1.0 / a; del := s;
    for i in 1..100000 loop
      ap := ap + 1.0; del := del * x / ap; s := s + del;
      exit when pg_catalog.abs(del) < pg_catalog.abs(s) * 1e-17;
    end loop;
    if -x + a * pg_catalog.ln(x) - gln < -745 then
      return 1.0;
    end if;
    return 1.0 - s * pg_catalog.exp(-x + a * pg_catalog.ln(x) - gln);
  end if;
  b := x + 1.0 - a; c := 1.0 / tiny; d := 1.0 / b; h := d;
  for i in 1..100000 loop
    an := -i * (i - a); b := b + 2.0;
    d := an * d + b; if pg_catalog.abs(d) < tiny then d := tiny; end if;
    c := b + an / c; if pg_catalog.abs(c) < tiny then c := tiny; end if;
    d := 1.0 / d; del := d * c; h := h * del;
    exit when pg_catalog.abs(del - 1.0) < 1e-17;
  end loop;
  if -x + a * pg_catalog.ln(x) - gln < -745 then
    return 0.0;
  end if;
  return pg_catalog.exp(-x + a * pg_catalog.ln(x) - gln) * h;
end
$$;
comment on function mlops._gammaq(double precision, double precision) is
  'Private: regularized upper incomplete gamma function Q(a, x) for a a multiple of 1/2 (chi-square survival = Q(dof/2, x/2)).';

-- Private: exact two-sided p-value of the two-sample KS test for integer statistic h = D*lcm(n1, n2)
-- (scipy's _compute_prob_outside_square for n1 = n2, _compute_outer_prob_inside_method otherwise).
create or replace function mlops._ks_exact_pvalue(n1 bigint, n2 bigint, h bigint) returns double precision
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  m bigint := greatest(n1, n2);
  n bigint := least(n1, n2);
  g bigint := pg_catalog.gcd(n1, n2);
  mg bigint; ng bigint;
  p double precision := 0; p1 double precision;
  k bigint; j bigint; i bigint; jj bigint;
  minj bigint; maxj bigint; lastminj bigint; curlen bigint; lastlen bigint;
  a double precision[];
  val double precision;
begin
  if h = 0 then
    return 1.0;
  end if;
  if n1 = n2 then
    k := pg_catalog.floor(n1::numeric / h);
    while k >= 0 loop
      p1 := 1.0;
      for j in 0..h - 1 loop
        p1 := (n1 - k * h - j) * p1 / (n1 + k * h + j + 1);
      end loop;
      p := p1 * (1.0 - p);
      k := k - 1;
    end loop;
    return least(greatest(2 * p, 0), 1);
  end if;
  mg := m / g; ng := n / g;
  minj := 0; maxj := least(pg_catalog.ceil(h::numeric / mg)::bigint, n + 1);
  curlen := maxj - minj;
  a := pg_catalog.array_fill(1.0::float8, array[least(2 * maxj + 2, n + 1)::integer], array[0]);
  for k in minj..maxj - 1 loop
    a[k] := 0.0;
  end loop;
  for i in 1..m loop
    lastminj := minj; lastlen := curlen;
    minj := least(greatest(pg_catalog.floor((ng * i - h)::numeric / mg)::bigint + 1, 0), n);
    maxj := least(pg_catalog.ceil((ng * i + h)::numeric / mg)::bigint, n + 1);
    if maxj <= minj then
      return 1.0;
    end if;
    val := case when minj = 0 then 0.0 else 1.0 end;
    for jj in 0..maxj - minj - 1 loop
      j := jj + minj;
      val := (a[jj + minj - lastminj] * i + val * j) / (i + j);
      a[jj] := val;
    end loop;
    curlen := maxj - minj;
    if lastlen > curlen then
      for k in maxj - minj..maxj - minj + (lastlen - curlen) - 1 loop
        a[k] := 1.0;
      end loop;
    end if;
  end loop;
  return least(greatest(a[maxj - minj - 1], 0), 1);
end
$$;
comment on function mlops._ks_exact_pvalue(bigint, bigint, bigint) is
  'Private: exact two-sided two-sample Kolmogorov-Smirnov p-value (Hodges lattice-path method, as scipy).';

-- Private: the Kolmogorov limiting distribution's survival function Q_KS(z) = 2 sum (-1)^(k-1) exp(-2 k^2 z^2)
-- (scipy.special.kolmogorov).
create or replace function mlops._kolmogorov_sf(z double precision) returns double precision
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  s double precision := 0;
  term double precision;
  k integer;
begin
  if z <= 0 then
    return 1.0;
  end if;
  if z < 1.18 then  -- the alternating series converges slowly here: use the theta-function form
    s := 0;
    for k in 1..50 loop
      exit when ((2 * k - 1) ^ 2) * pg_catalog.pi() ^ 2 / (8 * z * z) > 700;
      s := s + pg_catalog.exp(-((2 * k - 1) ^ 2) * pg_catalog.pi() ^ 2 / (8 * z * z));
    end loop;
    return 1.0 - pg_catalog.sqrt(2 * pg_catalog.pi()) / z * s;
  end if;
  for k in 1..100 loop
    exit when 2.0 * k * k * z * z > 700;
    term := pg_catalog.exp(-2.0 * k * k * z * z);
    s := s + (case when k % 2 = 1 then 2.0 else -2.0 end) * term;
  end loop;
  return least(greatest(s, 0), 1);
end
$$;
comment on function mlops._kolmogorov_sf(double precision) is
  'Private: survival function of the Kolmogorov limiting distribution (scipy.special.kolmogorov).';

-- Two-sample Kolmogorov-Smirnov test (two-sided). Statistic as scipy.stats.ks_2samp. p-value:
-- method 'exact' when max(n1, n2) <= 10000 (scipy's 'auto' rule; identical lattice-path algorithm,
-- equal to scipy to 1e-9), otherwise 'asymp' = Kolmogorov limit Q_KS(sqrt(n1 n2 / (n1 + n2)) D),
-- i.e. scipy.special.kolmogorov; scipy's own 'asymp' uses kstwo.sf(D, round(en)), which differs from
-- it by O(1/sqrt(en)) (< 1e-3 for en > 5000) -- irrelevant for a p < 0.05 drift decision.
-- Where scipy's exact value leaves [0, 1] by rounding (e.g. 1 + 2e-16 for a minimal D with ties),
-- scipy falls back to its asymptotic formula; we keep the exact value clamped to [0, 1].
create or replace function mlops.ks_2samp(reference double precision[], current double precision[],
                                          out statistic double precision, out p_value double precision,
                                          out method text)
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  n1 bigint := mlops._check_sample(reference, 'reference');
  n2 bigint := mlops._check_sample(current, 'current');
  g bigint := pg_catalog.gcd(n1, n2);
  lcm numeric := (n1 / g)::numeric * n2;
  h bigint;
begin
  with v as (
    select x, 1 as s from pg_catalog.unnest(reference) x where x is not null
    union all
    select x, 2 from pg_catalog.unnest(current) x where x is not null),
  c as (
    select x, pg_catalog.count(*) filter (where s = 1) as c1, pg_catalog.count(*) filter (where s = 2) as c2
      from v group by x),
  cum as (
    select (pg_catalog.sum(c1) over w)::float8 / n1 - (pg_catalog.sum(c2) over w)::float8 / n2 as diff
      from c window w as (order by x))
  select pg_catalog.max(pg_catalog.abs(diff)) into statistic from cum;
  if greatest(n1, n2) <= 10000 then
    h := pg_catalog.round(statistic::numeric * lcm);
    statistic := (h / lcm)::float8;
    p_value := mlops._ks_exact_pvalue(n1, n2, h);
    method := 'exact';
  else
    p_value := mlops._kolmogorov_sf(pg_catalog.sqrt(n1::float8 * n2 / (n1 + n2)) * statistic);
    method := 'asymp';
  end if;
end
$$;
comment on function mlops.ks_2samp(double precision[], double precision[]) is
  'Two-sided two-sample KS test: statistic, p-value and method (exact when max(n) <= 10000 as scipy, else Kolmogorov asymptotic). NULLs ignored; empty or NaN input raises 22023.';

-- First Wasserstein distance between two samples (scipy.stats.wasserstein_distance).
create or replace function mlops.wasserstein(reference double precision[], current double precision[])
returns double precision
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  n1 bigint := mlops._check_sample(reference, 'reference');
  n2 bigint := mlops._check_sample(current, 'current');
  result double precision;
begin
  with v as (
    select x, 1 as s from pg_catalog.unnest(reference) x where x is not null
    union all
    select x, 2 from pg_catalog.unnest(current) x where x is not null),
  c as (
    select x, pg_catalog.count(*) filter (where s = 1) as c1, pg_catalog.count(*) filter (where s = 2) as c2
      from v group by x),
  cum as (
    select pg_catalog.lead(x) over w - x as dx,
           (pg_catalog.sum(c1) over w)::float8 / n1 - (pg_catalog.sum(c2) over w)::float8 / n2 as diff
      from c window w as (order by x))
  -- A gap below the smallest normal float8 adds nothing that matters, but its product with a
  -- fraction can round to exactly 0, which PostgreSQL reports as an underflow error: skip it.
  select coalesce(pg_catalog.sum(pg_catalog.abs(diff) * dx) filter (where dx >= 2.2250738585072014e-308), 0)
    into result from cum where dx is not null;
  if result in ('NaN'::float8, 'Infinity'::float8) then
    raise exception using errcode = '22023', message = 'reference or current contains infinite values',
      hint = 'The Wasserstein distance is undefined with +/-Infinity.';
  end if;
  return result;
end
$$;
comment on function mlops.wasserstein(double precision[], double precision[]) is
  'First Wasserstein (earth mover''s) distance between two samples, as scipy.stats.wasserstein_distance. NULLs ignored.';

-- Jensen-Shannon distance between two discrete distributions given as weights (normalized
-- here), as scipy.spatial.distance.jensenshannon(p, q, base).
create or replace function mlops.js_distance(p double precision[], q double precision[], base double precision default null)
returns double precision
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  sp double precision;
  sq double precision;
  js double precision;
begin
  if p is null or q is null or pg_catalog.cardinality(p) = 0 or pg_catalog.cardinality(p) <> pg_catalog.cardinality(q) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('p and q must be non-empty arrays of the same length (got %s and %s)',
                                  pg_catalog.cardinality(p), pg_catalog.cardinality(q));
  end if;
  if exists (select from pg_catalog.unnest(p || q) x where x is null or x < 0 or x = 'NaN'::float8 or x = 'Infinity'::float8) then
    raise exception using errcode = '22023', message = 'p and q must hold finite non-negative weights (no NULL/NaN)';
  end if;
  select pg_catalog.sum(x) into sp from pg_catalog.unnest(p) x;
  select pg_catalog.sum(x) into sq from pg_catalog.unnest(q) x;
  if sp = 0 or sq = 0 then
    raise exception using errcode = '22023', message = 'p and q must each have a positive total weight';
  end if;
  select pg_catalog.sum(case when a > 0 then a * pg_catalog.ln(a / ((a + b) / 2)) else 0 end
                      + case when b > 0 then b * pg_catalog.ln(b / ((a + b) / 2)) else 0 end) / 2
    into js
    from (select x / sp as a, y / sq as b from unnest(p, q) as t(x, y)) s;
  js := pg_catalog.sqrt(greatest(js, 0));
  if base is not null then
    if base <= 0 or base = 1 then
      raise exception using errcode = '22023', message = pg_catalog.format('base must be positive and not 1, got %s', base);
    end if;
    js := js / pg_catalog.sqrt(pg_catalog.ln(base));
  end if;
  return js;
end
$$;
comment on function mlops.js_distance(double precision[], double precision[], double precision) is
  'Jensen-Shannon distance of two weight vectors (normalized), natural log unless base is given; as scipy.spatial.distance.jensenshannon.';

-- Jensen-Shannon distance between the category frequencies of two categorical samples (NULLs
-- ignored; categories absent from one side count as zero there).
create or replace function mlops.js_distance(reference text[], current text[], base double precision default null)
returns double precision
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select mlops.js_distance(pg_catalog.array_agg(coalesce(r.n, 0)::float8 order by k),
                           pg_catalog.array_agg(coalesce(c.n, 0)::float8 order by k), base)
    from (select x as k from pg_catalog.unnest(reference) x where x is not null
          union select x from pg_catalog.unnest(current) x where x is not null) keys
    left join (select x, pg_catalog.count(*) as n from pg_catalog.unnest(reference) x group by x) r on r.x = keys.k
    left join (select x, pg_catalog.count(*) as n from pg_catalog.unnest(current) x group by x) c on c.x = keys.k
$$;
comment on function mlops.js_distance(text[], text[], double precision) is
  'Jensen-Shannon distance between the category frequencies of two categorical samples (NULLs ignored).';

-- Chi-square test of independence on a 2 x k table of counts (reference row, current row),
-- as scipy.stats.chi2_contingency (Yates' correction when dof = 1, like scipy's default).
create or replace function mlops.chi2_test(reference_counts double precision[], current_counts double precision[],
                                           out statistic double precision, out p_value double precision,
                                           out dof integer)
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  r1 double precision; r2 double precision; total double precision;
begin
  if reference_counts is null or current_counts is null or pg_catalog.cardinality(reference_counts) < 2
     or pg_catalog.cardinality(reference_counts) <> pg_catalog.cardinality(current_counts) then
    raise exception using errcode = '22023',
      message = 'reference_counts and current_counts must be arrays of the same length >= 2 (one count per category)';
  end if;
  if exists (select from pg_catalog.unnest(reference_counts || current_counts) x
              where x is null or x < 0 or x = 'NaN'::float8 or x = 'Infinity'::float8) then
    raise exception using errcode = '22023', message = 'reference_counts and current_counts must be finite non-negative counts';
  end if;
  if exists (select from unnest(reference_counts, current_counts) t(a, b) where a + b = 0) then
    raise exception using errcode = '22023', message = 'a category has zero count in both reference_counts and current_counts',
      hint = 'Drop categories that occur in neither sample.';
  end if;
  select pg_catalog.sum(x) into r1 from pg_catalog.unnest(reference_counts) x;
  select pg_catalog.sum(x) into r2 from pg_catalog.unnest(current_counts) x;
  if r1 = 0 or r2 = 0 then
    raise exception using errcode = '22023', message = 'reference_counts and current_counts must each have a positive total';
  end if;
  total := r1 + r2;
  dof := pg_catalog.cardinality(reference_counts) - 1;
  select pg_catalog.sum(case when dof = 1 then (pg_catalog.abs(o - e) - least(0.5, pg_catalog.abs(o - e))) ^ 2 / e
                             else (o - e) ^ 2 / e end)
    into statistic
    from (select a as o, (a + b) * r1 / total as e from unnest(reference_counts, current_counts) t(a, b)
          union all
          select b, (a + b) * r2 / total from unnest(reference_counts, current_counts) t(a, b)) cells;
  p_value := mlops._gammaq(dof / 2.0, statistic / 2.0);
end
$$;
comment on function mlops.chi2_test(double precision[], double precision[]) is
  'Chi-square test of homogeneity on per-category counts (2 x k table), as scipy.stats.chi2_contingency: statistic, p-value, dof.';

-- Chi-square test between two categorical samples (categories = union, NULLs ignored).
create or replace function mlops.chi2_test(reference text[], current text[],
                                           out statistic double precision, out p_value double precision,
                                           out dof integer)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select (mlops.chi2_test(pg_catalog.array_agg(coalesce(r.n, 0)::float8 order by k),
                          pg_catalog.array_agg(coalesce(c.n, 0)::float8 order by k))).*
    from (select x as k from pg_catalog.unnest(reference) x where x is not null
          union select x from pg_catalog.unnest(current) x where x is not null) keys
    left join (select x, pg_catalog.count(*) as n from pg_catalog.unnest(reference) x group by x) r on r.x = keys.k
    left join (select x, pg_catalog.count(*) as n from pg_catalog.unnest(current) x group by x) c on c.x = keys.k
$$;
comment on function mlops.chi2_test(text[], text[]) is
  'Chi-square test of homogeneity between the category counts of two categorical samples (NULLs ignored).';

-- Two-proportion pooled Z-test (two-sided), as statsmodels proportions_ztest: z and p-value.
create or replace function mlops.z_test_proportions(reference_successes bigint, reference_total bigint,
                                                    current_successes bigint, current_total bigint,
                                                    out z double precision, out p_value double precision)
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  p1 double precision; p2 double precision; p double precision; se double precision;
begin
  if reference_total is null or reference_total <= 0 or current_total is null or current_total <= 0 then
    raise exception using errcode = '22023', message = 'reference_total and current_total must be positive';
  end if;
  if reference_successes is null or reference_successes < 0 or reference_successes > reference_total then
    raise exception using errcode = '22023', message = 'reference_successes must be between 0 and reference_total';
  end if;
  if current_successes is null or current_successes < 0 or current_successes > current_total then
    raise exception using errcode = '22023', message = 'current_successes must be between 0 and current_total';
  end if;
  p1 := reference_successes::float8 / reference_total;
  p2 := current_successes::float8 / current_total;
  p := (reference_successes + current_successes)::float8 / (reference_total + current_total);
  se := pg_catalog.sqrt(p * (1 - p) * (1.0 / reference_total + 1.0 / current_total));
  if se = 0 then  -- both proportions 0 or both 1: no evidence of a difference
    z := 0; p_value := 1; return;
  end if;
  z := (p2 - p1) / se;
  p_value := mlops._gammaq(0.5, z * z / 2);  -- P(|Z| > |z|) = Q(1/2, z^2/2)
end
$$;
comment on function mlops.z_test_proportions(bigint, bigint, bigint, bigint) is
  'Two-sided pooled two-proportion Z-test (current minus reference): z and p-value.';

-- Population stability index between binned reference and current counts (weights are
-- normalized; empty bins are floored at 1e-4 so the index stays finite).
create or replace function mlops.psi_binned(reference_counts double precision[], current_counts double precision[])
returns double precision
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  sr double precision; sc double precision; result double precision;
begin
  if reference_counts is null or current_counts is null or pg_catalog.cardinality(reference_counts) = 0
     or pg_catalog.cardinality(reference_counts) <> pg_catalog.cardinality(current_counts) then
    raise exception using errcode = '22023', message = 'reference_counts and current_counts must be non-empty arrays of the same length';
  end if;
  if exists (select from pg_catalog.unnest(reference_counts || current_counts) x
              where x is null or x < 0 or x = 'NaN'::float8 or x = 'Infinity'::float8) then
    raise exception using errcode = '22023', message = 'reference_counts and current_counts must be finite non-negative counts';
  end if;
  select pg_catalog.sum(x) into sr from pg_catalog.unnest(reference_counts) x;
  select pg_catalog.sum(x) into sc from pg_catalog.unnest(current_counts) x;
  if sr = 0 or sc = 0 then
    raise exception using errcode = '22023', message = 'reference_counts and current_counts must each have a positive total';
  end if;
  select pg_catalog.sum((c - r) * pg_catalog.ln(c / r)) into result
    from (select greatest(a / sr, 1e-4) as r, greatest(b / sc, 1e-4) as c
            from unnest(reference_counts, current_counts) t(a, b)) s;
  return result;
end
$$;
comment on function mlops.psi_binned(double precision[], double precision[]) is
  'Population stability index sum((c - r) ln(c / r)) over normalized bin counts (proportions floored at 1e-4). < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant.';

-- Private: counts of a sample per bin of sorted edges e1 < ... < ek: bin 0 is x < e1, bin i is
-- e_i <= x < e_(i+1), bin k is x >= ek (width_bucket; numpy.searchsorted(edges, x, 'right')).
create or replace function mlops._bin_counts(sample double precision[], edges double precision[])
returns double precision[]
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.array_agg(coalesce(c.n, 0)::float8 order by b)
    from pg_catalog.generate_series(0, coalesce(pg_catalog.cardinality(edges), 0)) b
    left join (select case when edges is null or pg_catalog.cardinality(edges) = 0 then 0
                           else pg_catalog.width_bucket(x, edges) end as k, pg_catalog.count(*) as n
                 from pg_catalog.unnest(sample) x where x is not null group by 1) c on c.k = b
$$;
comment on function mlops._bin_counts(double precision[], double precision[]) is
  'Private: per-bin counts of a sample over sorted edges (bin 0 below the first edge, last bin at or above the last).';

-- PSI between two numeric samples: bins are the reference's quantiles (numpy.quantile, linear),
-- open-ended at both ends so current values outside the reference range are counted.
create or replace function mlops.psi(reference double precision[], current double precision[], bins integer default 10)
returns double precision
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  edges double precision[];
begin
  perform mlops._check_sample(reference, 'reference'), mlops._check_sample(current, 'current');
  if bins is null or bins < 2 or bins > 1000 then
    raise exception using errcode = '22023', message = pg_catalog.format('bins must be between 2 and 1000, got %s', bins);
  end if;
  select pg_catalog.array_agg(distinct e order by e) into edges
    from pg_catalog.unnest((select pg_catalog.percentile_cont(
                                     (select pg_catalog.array_agg(i::float8 / bins) from pg_catalog.generate_series(1, bins - 1) i))
                                   within group (order by x)
                              from pg_catalog.unnest(reference) x where x is not null)) e;
  return mlops.psi_binned(mlops._bin_counts(reference, edges), mlops._bin_counts(current, edges));
end
$$;
comment on function mlops.psi(double precision[], double precision[], integer) is
  'Population stability index of two numeric samples over the reference''s quantile bins (default 10), outer bins open-ended.';
