-- Experiments: statistics in plain SQL (no PL/Python needed): normal and Student t
-- distributions, chi-square upper tail, two-proportion z-test, Welch t-test, SRM check,
-- and a Gaussian chance-to-beat-control. Checked against scipy/statsmodels in the tests.

-- Natural log of the gamma function (Lanczos, g = 7, 9 terms; |error| < 1e-13 for x > 0).
create or replace function mlops._lgamma(x float8) returns float8
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  c float8[] := array[0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
                      -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
                      1.5056327351493116e-7];
  a float8;
  t float8;
  i integer;
begin
  if x < 0.5 then
    return pg_catalog.ln(pi() / pg_catalog.abs(pg_catalog.sin(pi() * x))) - mlops._lgamma(1 - x);
  end if;
  x := x - 1;
  a := c[1];
  t := x + 7.5;
  for i in 1 .. 8 loop
    a := a + c[i + 1] / (x + i);
  end loop;
  return 0.5 * pg_catalog.ln(2 * pi()) + (x + 0.5) * pg_catalog.ln(t) - t + pg_catalog.ln(a);
end
$$;
comment on function mlops._lgamma(float8) is 'Private: ln Gamma(x) (Lanczos approximation).';

-- Standard normal CDF: Phi(z) = erfc(-z / sqrt 2) / 2 with erfc(x) = Q(1/2, x^2) (double precision).
create or replace function mlops._norm_cdf(z float8) returns float8
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  if z < 0 then
    return 0.5 * mlops._gammq(0.5::float8, z * z / 2);
  end if;
  return 1 - 0.5 * mlops._gammq(0.5::float8, z * z / 2);
end
$$;
comment on function mlops._norm_cdf(float8) is 'Private: standard normal CDF through the regularized gamma function.';

-- Continued fraction of the regularized incomplete beta function (modified Lentz).
create or replace function mlops._betacf(a float8, b float8, x float8) returns float8
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  qab float8 := a + b;
  qap float8 := a + 1;
  qam float8 := a - 1;
  c float8 := 1;
  d float8 := 1 - qab * x / qap;
  h float8;
  aa float8;
  del float8;
  m integer;
  m2 integer;
begin
  if pg_catalog.abs(d) < 1e-300 then d := 1e-300; end if;
  d := 1 / d;
  h := d;
  for m in 1 .. 10000 loop
    m2 := 2 * m;
    aa := m * (b - m) * x / ((qam + m2) * (a + m2));
    d := 1 + aa * d; if pg_catalog.abs(d) < 1e-300 then d := 1e-300; end if;
    c := 1 + aa / c; if pg_catalog.abs(c) < 1e-300 then c := 1e-300; end if;
    d := 1 / d; h := h * d * c;
    aa := -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d := 1 + aa * d; if pg_catalog.abs(d) < 1e-300 then d := 1e-300; end if;
    c := 1 + aa / c; if pg_catalog.abs(c) < 1e-300 then c := 1e-300; end if;
    d := 1 / d; del := d * c; h := h * del;
    exit when pg_catalog.abs(del - 1) < 1e-15;
  end loop;
  return h;
end
$$;
comment on function mlops._betacf(float8, float8, float8) is 'Private: continued fraction for the incomplete beta function.';

-- Regularized incomplete beta I_x(a, b).
create or replace function mlops._betainc(a float8, b float8, x float8) returns float8
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  bt float8;
begin
  if x <= 0 then return 0; end if;
  if x >= 1 then return 1; end if;
  bt := pg_catalog.exp(mlops._lgamma(a + b) - mlops._lgamma(a) - mlops._lgamma(b) + a * pg_catalog.ln(x) + b * pg_catalog.ln(1 - x));
  if x < (a + 1) / (a + b + 2) then
    return bt * mlops._betacf(a, b, x) / a;
  end if;
  return 1 - bt * mlops._betacf(b, a, 1 - x) / b;
end
$$;
comment on function mlops._betainc(float8, float8, float8) is 'Private: regularized incomplete beta function I_x(a, b).';

-- Two-sided p-value of Student's t with df degrees of freedom (df may be fractional).
create or replace function mlops._t_two_sided_p(t float8, df float8) returns float8
language sql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$ select mlops._betainc(df / 2, 0.5, df / (df + t * t)) $$;
comment on function mlops._t_two_sided_p(float8, float8) is 'Private: two-sided p-value of a t statistic.';

-- Upper tail Q(a, x) of the regularized gamma function (series or continued fraction).
create or replace function mlops._gammq(a float8, x float8) returns float8
language plpgsql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  gln float8 := mlops._lgamma(a);
  ap float8; s float8; del float8;
  b float8; c float8; d float8; h float8; an float8;
  i integer;
begin
  if x <= 0 then return 1; end if;
  if x < a + 1 then
    ap := a; s := 1 / a; del := s;
    for i in 1 .. 100000 loop
      ap := ap + 1; del := del * x / ap; s := s + del;
      exit when pg_catalog.abs(del) < pg_catalog.abs(s) * 1e-16;
    end loop;
    return 1 - s * pg_catalog.exp(-x + a * pg_catalog.ln(x) - gln);
  end if;
  b := x + 1 - a; c := 1e300; d := 1 / b; h := d;
  for i in 1 .. 100000 loop
    an := -i * (i - a); b := b + 2;
    d := an * d + b; if pg_catalog.abs(d) < 1e-300 then d := 1e-300; end if;
    c := b + an / c; if pg_catalog.abs(c) < 1e-300 then c := 1e-300; end if;
    d := 1 / d; del := d * c; h := h * del;
    exit when pg_catalog.abs(del - 1) < 1e-16;
  end loop;
  return pg_catalog.exp(-x + a * pg_catalog.ln(x) - gln) * h;
end
$$;
comment on function mlops._gammq(float8, float8) is 'Private: regularized upper incomplete gamma Q(a, x).';

-- Two-proportion z-test (pooled variance, two-sided), like statsmodels proportions_ztest.
create or replace function mlops.two_proportion_ztest(successes_a bigint, n_a bigint, successes_b bigint, n_b bigint,
                                                      out z float8, out p_value float8)
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  p float8;
  se float8;
begin
  if n_a is null or n_b is null or n_a <= 0 or n_b <= 0 or successes_a < 0 or successes_b < 0
     or successes_a > n_a or successes_b > n_b or successes_a is null or successes_b is null then
    raise exception using errcode = '22023',
      message = pg_catalog.format('need 0 <= successes <= n and n > 0, got %s/%s and %s/%s (arguments successes_*, n_*)',
                                  successes_a, n_a, successes_b, n_b);
  end if;
  p := (successes_a + successes_b)::float8 / (n_a + n_b);
  se := pg_catalog.sqrt(p * (1 - p) * (1::float8 / n_a + 1::float8 / n_b));
  if se = 0 then
    z := null; p_value := null;
    return;
  end if;
  z := (successes_b::float8 / n_b - successes_a::float8 / n_a) / se;
  p_value := 2 * mlops._norm_cdf(-pg_catalog.abs(z));
end
$$;
comment on function mlops.two_proportion_ztest(bigint, bigint, bigint, bigint) is
  'Two-proportion z-test of B vs A (pooled, two-sided): z and p_value; NULLs when the pooled variance is 0.';

-- Welch's t-test from summary statistics (mean, sample sd, n per arm), like scipy ttest_ind(equal_var=False).
create or replace function mlops.welch_ttest(mean_a float8, sd_a float8, n_a bigint, mean_b float8, sd_b float8, n_b bigint,
                                             out t float8, out df float8, out p_value float8)
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  va float8;
  vb float8;
begin
  if n_a is null or n_b is null or n_a < 2 or n_b < 2 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('Welch t-test needs n >= 2 per arm, got %s and %s (arguments n_a, n_b)', n_a, n_b);
  end if;
  if mean_a is null or mean_b is null or sd_a is null or sd_b is null or sd_a < 0 or sd_b < 0
     or mean_a in ('NaN', 'Infinity', '-Infinity') or mean_b in ('NaN', 'Infinity', '-Infinity') then
    raise exception using errcode = '22023', message = 'means and standard deviations must be finite, sd >= 0 (arguments mean_*, sd_*)';
  end if;
  va := sd_a * sd_a / n_a;
  vb := sd_b * sd_b / n_b;
  if va + vb = 0 then
    return;
  end if;
  t := (mean_b - mean_a) / pg_catalog.sqrt(va + vb);
  df := (va + vb) ^ 2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1));
  p_value := mlops._t_two_sided_p(t, df);
end
$$;
comment on function mlops.welch_ttest(float8, float8, bigint, float8, float8, bigint) is
  'Welch''s unequal-variance t-test of B vs A from summary statistics: t, df, two-sided p_value.';

-- Sample ratio mismatch: chi-square goodness of fit of observed counts to expected weights.
create or replace function mlops.srm_test(observed bigint[], weights float8[], out chi2 float8, out p_value float8)
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  total float8;
  wsum float8;
begin
  if observed is null or weights is null or pg_catalog.cardinality(observed) <> pg_catalog.cardinality(weights)
     or pg_catalog.cardinality(observed) < 2 then
    raise exception using errcode = '22023', message = 'observed and weights must be arrays of the same length >= 2 (arguments observed, weights)';
  end if;
  if exists (select from pg_catalog.unnest(observed) o where o is null or o < 0)
     or exists (select from pg_catalog.unnest(weights) w where w is null or not (w > 0) or w = 'Infinity') then
    raise exception using errcode = '22023', message = 'observed counts must be >= 0 and weights > 0 (arguments observed, weights)';
  end if;
  select sum(o) into total from pg_catalog.unnest(observed) o;
  select sum(w) into wsum from pg_catalog.unnest(weights) w;
  if total = 0 then
    return;
  end if;
  select sum((o - total * w / wsum) ^ 2 / (total * w / wsum)) into chi2
    from unnest(observed, weights) u(o, w);
  p_value := mlops._gammq((pg_catalog.cardinality(observed) - 1) / 2.0, chi2 / 2);
end
$$;
comment on function mlops.srm_test(bigint[], float8[]) is
  'Sample ratio mismatch check: chi-square of observed units per variant vs their weights, and its p-value '
  '(GrowthBook flags p < 0.001).';

-- Probability that B beats A under Gaussian posteriors of the two means (mean, standard error).
create or replace function mlops.chance_to_beat(mean_a float8, se_a float8, mean_b float8, se_b float8) returns float8
language sql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$
  select case when se_a * se_a + se_b * se_b > 0
              then mlops._norm_cdf((mean_b - mean_a) / pg_catalog.sqrt(se_a * se_a + se_b * se_b)) end
$$;
comment on function mlops.chance_to_beat(float8, float8, float8, float8) is
  'Bayesian chance that B beats A with Gaussian posteriors N(mean, se^2) of each arm''s mean.';
