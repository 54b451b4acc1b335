-- Drift monitors: compare current data (one scan) against a stored reference profile, write
-- mlops.drift_runs / mlops.drift_results, raise or resolve the monitor's drift alert.

-- Private: default thresholds per method. Tests (ks, chi2, z, mmd): drift when p < threshold.
-- Distances (wasserstein normed by the reference std, js, psi, centroid_cosine, dimension_share,
-- nn_share): drift when statistic >= threshold.
create or replace function mlops._drift_default_thresholds() returns jsonb
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select '{"ks": 0.05, "chi2": 0.05, "z": 0.05, "mmd": 0.05, "wasserstein": 0.1, "js": 0.1, "psi": 0.1,
           "centroid_cosine": 0.05, "dimension_share": 0.2, "nn_share": 0.2}'::jsonb
$$;
comment on function mlops._drift_default_thresholds() is
  'Private: default drift thresholds (Evidently-like): p < 0.05 for tests, 0.1 for normed Wasserstein, JS and PSI.';

-- Private: first Wasserstein distance between two distributions given by their quantiles at the
-- common levels 0, 0.001, ..., 1 (trapezoid rule on |Q_r(u) - Q_c(u)|). Error versus the exact
-- sample distance is at most (max - min of both samples) / 1000 plus the interpolation of
-- percentile_cont; tests keep it within 1% of scipy on continuous data.
create or replace function mlops._wasserstein_quantiles(qr double precision[], qc double precision[])
returns double precision
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.sum((pg_catalog.abs(d) + pg_catalog.abs(dn)) / 2) / (pg_catalog.count(*))
    from (select a - b as d, pg_catalog.lead(a - b) over (order by o) as dn
            from unnest(qr, qc) with ordinality t(a, b, o)) s
   where dn is not null
$$;
comment on function mlops._wasserstein_quantiles(double precision[], double precision[]) is
  'Private: Wasserstein-1 distance from two quantile grids (levels 0..1 step 0.001).';

-- Private: KS statistic from two quantile grids (levels 0..1 step 0.001): sup |F_r - F_c| of the
-- step CDFs read off the grids. Each grid CDF is within 0.001 of its sample's ECDF between grid
-- points, so |D_approx - D| <= 0.002 (+ 1/n for interpolated ties). Used only when the reference
-- has more rows than the profile's sample_size (otherwise KS is exact on stored values).
create or replace function mlops._ks_quantiles(qr double precision[], qc double precision[]) returns double precision
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.max(pg_catalog.abs(coalesce(fr, 0) - coalesce(fc, 0)))
    from (select pg_catalog.max(l) filter (where s = 1) over w as fr, pg_catalog.max(l) filter (where s = 2) over w as fc
            from (select q, (o - 1) / 1000.0::float8 as l, 1 as s from unnest(qr) with ordinality t(q, o)
                  union all
                  select q, (o - 1) / 1000.0::float8, 2 from unnest(qc) with ordinality t(q, o)) p
          window w as (order by q range between unbounded preceding and current row)) c
$$;
comment on function mlops._ks_quantiles(double precision[], double precision[]) is
  'Private: approximate two-sample KS statistic from quantile grids (error <= 0.002).';

-- Private: extra one-scan expressions of a monitor run: current histogram over the reference's
-- PSI edges, counts per reference category (+ unseen), all values when an exact test needs them.
create or replace function mlops._drift_current_exprs(cols text[], kinds text[], methods text[], prof jsonb)
returns text
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  parts text[] := '{}';
  i integer;
  e text;
  edges double precision[];
  cats text[];
  chunk text[];
  j integer;
  objs text[];
begin
  for i in 1..coalesce(pg_catalog.cardinality(cols), 0) loop
    if kinds[i] = 'numeric' then
      e := pg_catalog.format('%I', 'n#' || cols[i]);  -- cleaned value, and its bin "b#<col>", from mlops._drift_scan
      edges := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(prof -> cols[i] -> 'edges') x);
      parts := parts || pg_catalog.format(
        'pg_catalog.jsonb_build_object(%L, pg_catalog.jsonb_build_array(%s))', '__hist_' || cols[i],
        (select pg_catalog.string_agg(pg_catalog.format('pg_catalog.count(*) filter (where %I = %s)', 'b#' || cols[i], b), ', ' order by b)
           from pg_catalog.generate_series(0, coalesce(pg_catalog.cardinality(edges), 0)) b));
      if methods[i] in ('ks', 'chi2') and prof -> cols[i] -> 'values' <> 'null'::jsonb then
        parts := parts || pg_catalog.format(
          'pg_catalog.jsonb_build_object(%L, pg_catalog.array_agg(%s) filter (where %2$s is not null))', '__values_' || cols[i], e);
      end if;
    elsif kinds[i] = 'categorical' then
      cats := (select pg_catalog.array_agg(k order by k) from pg_catalog.jsonb_object_keys(prof -> cols[i] -> 'categories') k);
      objs := '{}';
      for j in 0..(coalesce(pg_catalog.cardinality(cats), 0) - 1) / 40 loop
        chunk := cats[j * 40 + 1 : j * 40 + 40];
        objs := objs || ('pg_catalog.jsonb_build_object(' ||
          (select pg_catalog.string_agg(pg_catalog.format('%L, pg_catalog.count(*) filter (where %I::text = %L)', c, cols[i], c), ', ')
             from pg_catalog.unnest(chunk) c) || ')');
      end loop;
      objs := objs || pg_catalog.format('pg_catalog.jsonb_build_object(%L, pg_catalog.count(*) filter (where %I is not null and %I::text <> all (%L::text[])))',
                                        '__unseen__', cols[i], cols[i], coalesce(cats, '{}'));
      parts := parts || pg_catalog.format('pg_catalog.jsonb_build_object(%L, %s)', '__cats_' || cols[i],
                                          pg_catalog.array_to_string(objs, ' || '));
    end if;
  end loop;
  return pg_catalog.array_to_string(parts, ' || ');
end
$$;
comment on function mlops._drift_current_exprs(text[], text[], text[], jsonb) is
  'Private: per-column expressions a monitor adds to the one-scan summary of current data.';

-- Creates (or with replace => true, redefines) a drift monitor over current data: a query, a
-- model's prediction log (the last time_window), or a feature group. columns maps column ->
-- method ('auto' default; numeric: ks, wasserstein, psi, chi2; categorical: chi2, js, z, psi;
-- vector: embedding); thresholds overrides per method; drift_share is the share of drifted
-- columns that makes the dataset drifted; schedule is used by run_due_monitors().
create or replace function mlops.create_drift_monitor(
  name text, profile text, query text default null, model text default null, feature_group text default null,
  time_window interval default null, columns jsonb default null, thresholds jsonb default '{}',
  drift_share double precision default 0.5, schedule interval default null, about_model text default null,
  replace boolean default false)
returns bigint
language plpgsql volatile set search_path from current
as $$
declare
  prof record;
  src record;
  cols jsonb := '{}';
  c text;
  m text;
  kind text;
  cur record;
  mon_id bigint;
  allowed jsonb := '{"numeric": ["auto", "ks", "wasserstein", "psi", "chi2"],
                     "categorical": ["auto", "chi2", "js", "z", "psi"], "vector": ["auto", "embedding"]}';
begin
  perform mlops._check_name(name, 'name');
  select * into prof from mlops.drift_profiles p where p.name = create_drift_monitor.profile;
  if not found then
    raise exception using errcode = '42704', message = pg_catalog.format('reference profile %L does not exist', profile),
      hint = 'Create it with mlops.create_reference_profile(...).';
  end if;
  if exists (select from mlops.drift_monitors d where d.name = create_drift_monitor.name) and not replace then
    raise exception using errcode = '42710', message = pg_catalog.format('drift monitor %L already exists', name),
      hint = 'Pass replace => true to redefine it.';
  end if;
  if time_window is not null and time_window <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('time_window must be positive, got %s', time_window);
  end if;
  if schedule is not null and schedule < interval '1 minute' then
    raise exception using errcode = '22023', message = pg_catalog.format('schedule must be at least 1 minute, got %s', schedule);
  end if;
  if drift_share is null or drift_share <= 0 or drift_share > 1 or drift_share = 'NaN'::float8 then
    raise exception using errcode = '22023', message = pg_catalog.format('drift_share must be in (0, 1], got %s', drift_share);
  end if;
  if about_model is not null then
    perform mlops._check_name(about_model, 'about_model');
  end if;
  if thresholds is null or pg_catalog.jsonb_typeof(thresholds) <> 'object' then
    raise exception using errcode = '22023', message = 'thresholds must be a JSON object of method -> number';
  end if;
  for c, m in select key, value::text from pg_catalog.jsonb_each(thresholds) loop
    if not mlops._drift_default_thresholds() ? c then
      raise exception using errcode = '22023', message = pg_catalog.format('thresholds has unknown method %L', c),
        hint = 'Known: ' || (select pg_catalog.string_agg(k, ', ') from pg_catalog.jsonb_object_keys(mlops._drift_default_thresholds()) k);
    end if;
    if pg_catalog.jsonb_typeof(thresholds -> c) <> 'number' or (thresholds ->> c)::float8 <= 0 then
      raise exception using errcode = '22023', message = pg_catalog.format('thresholds.%s must be a positive number, got %s', c, m);
    end if;
  end loop;
  if columns is null then
    select pg_catalog.jsonb_object_agg(k, 'auto') into cols from pg_catalog.jsonb_object_keys(prof.columns) k;
  elsif pg_catalog.jsonb_typeof(columns) = 'array' then
    select pg_catalog.jsonb_object_agg(k, 'auto') into cols from pg_catalog.jsonb_array_elements_text(columns) k;
  elsif pg_catalog.jsonb_typeof(columns) = 'object' then
    cols := columns;
  else
    raise exception using errcode = '22023', message = 'columns must be a JSON array of names or an object column -> method';
  end if;
  if cols is null or cols = '{}' then
    raise exception using errcode = '22023', message = 'columns is empty';
  end if;
  for c, m in select key, value #>> '{}' from pg_catalog.jsonb_each(cols) loop
    kind := prof.columns -> c ->> 'type';
    if kind is null then
      raise exception using errcode = '42703', message = pg_catalog.format('column %L is not in reference profile %L', c, profile);
    end if;
    if not (allowed -> kind) ? m then
      raise exception using errcode = '22023',
        message = pg_catalog.format('method %L is not valid for %s column %L (use one of %s)', m, kind, c, allowed -> kind);
    end if;
  end loop;
  -- the current source must exist now and have the columns with the same kinds
  src := mlops._drift_source(query, model, feature_group, null, null);
  for cur in select * from mlops._drift_columns(src.sub, (select pg_catalog.array_agg(k) from pg_catalog.jsonb_object_keys(cols) k)) loop
    if cur.kind <> prof.columns -> cur.column_name ->> 'type' then
      raise exception using errcode = '42804',
        message = pg_catalog.format('column %L is %s in the current source but %s in profile %L', cur.column_name, cur.kind,
                                    prof.columns -> cur.column_name ->> 'type', profile);
    end if;
  end loop;
  delete from mlops.drift_monitors d where d.name = create_drift_monitor.name;
  insert into mlops.drift_monitors (name, profile_id, source_kind, source, time_window, columns, thresholds,
                                    drift_share, schedule, model)
  values (name, prof.id, src.kind, src.source, time_window, cols, thresholds, drift_share, schedule,
          coalesce(about_model, case when src.kind = 'model' then src.source end))
  returning id into mon_id;
  return mon_id;
end
$$;
comment on function mlops.create_drift_monitor(text, text, text, text, text, interval, jsonb, jsonb, double precision, interval, text, boolean) is
  'Creates a drift monitor of current data (query, model prediction log over time_window, or feature group) against a reference profile. Example: mlops.create_drift_monitor(name => ''m'', profile => ''ref'', query => ''select * from t'').';

-- Private: writes one result row (significant = false vetoes a distance that sampling noise explains).
create or replace function mlops._drift_result(run_id bigint, column_name text, column_type text, method text,
                                               statistic double precision, p_value double precision,
                                               threshold double precision, details jsonb, significant boolean default true)
returns void
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  insert into mlops.drift_results (run_id, column_name, column_type, method, statistic, p_value, threshold, drifted, details)
  values (run_id, column_name, column_type, method, statistic, p_value, threshold,
          coalesce(case when method in ('ks', 'chi2', 'z', 'mmd') then p_value < threshold
                        when method = 'missing' then true
                        else statistic >= threshold and significant end, false),
          coalesce(details, '{}'))
$$;
comment on function mlops._drift_result(bigint, text, text, text, double precision, double precision, double precision, jsonb, boolean) is
  'Private: inserts a drift result; tests drift when p < threshold, distances when statistic >= threshold (and significant).';

-- Runs a monitor: one aggregate scan of the current data (plus a random vector sample when it
-- has vector columns), per-column statistics against the stored profile, a run row with the
-- dataset drift share, the drift alert raised or resolved, NOTIFY mlops_drift. Returns the results.
-- Empty current data raises 22023 and writes nothing; a column whose current values are all
-- NULL / non-finite gets method 'missing' (drifted).
create or replace function mlops.run_drift_monitor(name text) returns setof mlops.drift_results
language plpgsql volatile set search_path from current set hnsw.ef_search = '40'
as $$
declare
  mon mlops.drift_monitors;
  prof mlops.drift_profiles;
  src record;
  cols text[];
  kinds text[];
  methods text[];
  th jsonb;
  summary jsonb;
  rid bigint;
  i integer;
  c text; k text; m text;
  r jsonb; cu jsonb;
  qr double precision[]; qc double precision[];
  rv double precision[]; cv double precision[];
  rc double precision[]; cc double precision[];
  keys text[];
  stat double precision; pv double precision; w double precision;
  t record;
  det jsonb;
  n_total integer; n_drifted integer; share double precision; drifted_cols text[];
  top text;
  refc real[]; curc real[]; refvar double precision[]; curvar double precision[];
  nr double precision; nc double precision; noise_ratio double precision;
  cur_sample text;
  n_mmd integer; n_nn integer; n_probe bigint;
  nn_index text;
begin
  select * into mon from mlops.drift_monitors d where d.name = run_drift_monitor.name;
  if not found then
    raise exception using errcode = '42704', message = pg_catalog.format('drift monitor %L does not exist', name);
  end if;
  select * into prof from mlops.drift_profiles p where p.id = mon.profile_id;
  th := mlops._drift_default_thresholds() || mon.thresholds;
  src := mlops._drift_source(case when mon.source_kind = 'query' then mon.source end,
                             case when mon.source_kind = 'model' then mon.source end,
                             case when mon.source_kind = 'feature_group' then mon.source end,
                             case when mon.time_window is not null then pg_catalog.now() - mon.time_window end,
                             case when mon.time_window is not null then pg_catalog.now() end);
  select pg_catalog.array_agg(key order by key), pg_catalog.array_agg(prof.columns -> key ->> 'type' order by key),
         pg_catalog.array_agg(value #>> '{}' order by key)
    into cols, kinds, methods from pg_catalog.jsonb_each(mon.columns);
  -- resolve 'auto' (Evidently's sample-size-aware defaults)
  for i in 1..pg_catalog.cardinality(cols) loop
    continue when methods[i] <> 'auto';
    r := prof.columns -> cols[i];
    methods[i] := case kinds[i]
      when 'numeric' then case when r -> 'values' <> 'null'::jsonb
                               then case when (r ->> 'distinct')::int > 5 then 'ks' else 'chi2' end
                               else 'wasserstein' end
      when 'categorical' then case when (r ->> 'count')::bigint <= 1000
                                   then case when (r ->> 'distinct')::int <= 2 then 'z' else 'chi2' end
                                   else 'js' end
      else 'embedding' end;
  end loop;
  perform mlops._drift_columns(src.sub, cols);  -- current source still has the columns (42703 otherwise)
  summary := mlops._drift_scan(src.sub, cols, kinds, 'current',
                               nullif(mlops._drift_current_exprs(cols, kinds, methods, prof.columns), ''), prof.columns);
  if (summary ->> '__rows')::bigint = 0 then
    raise exception using errcode = '22023', message = pg_catalog.format('the current data of monitor %L is empty', name),
      hint = 'Check the query, model name or time_window.';
  end if;
  insert into mlops.drift_runs (monitor_id, reference_rows, current_rows, columns_total, columns_drifted, share_drifted, dataset_drift)
  values (mon.id, prof.row_count, (summary ->> '__rows')::bigint, pg_catalog.cardinality(cols), 0, 0, false)
  returning id into rid;

  for i in 1..pg_catalog.cardinality(cols) loop
    c := cols[i]; k := kinds[i]; m := methods[i]; r := prof.columns -> c; cu := summary -> c;
    det := pg_catalog.jsonb_build_object('reference_count', r -> 'count', 'current_count', cu -> 'count',
                                         'reference_null_rate', (r ->> 'nulls')::float8 / prof.row_count,
                                         'current_null_rate', (cu ->> 'nulls')::float8 / (summary ->> '__rows')::float8);
    if (cu ->> 'count')::bigint = 0 then
      perform mlops._drift_result(rid, c, k, 'missing', 1.0, null, 1.0, det || '{"reason": "no usable current value"}');
      continue;
    end if;
    if k = 'numeric' then
      qr := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(r -> 'quantiles') x);
      qc := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(cu -> 'quantiles') x);
      rc := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(r -> 'hist') x);
      cc := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(summary -> ('__hist_' || c)) x);
      det := det || pg_catalog.jsonb_build_object('edges', r -> 'edges', 'reference_hist', r -> 'hist', 'current_hist', cc,
                                                  'psi', mlops.psi_binned(rc, cc), 'reference_mean', r -> 'mean',
                                                  'current_mean', cu -> 'mean', 'reference_std', r -> 'std', 'current_std', cu -> 'std',
                                                  'current_non_finite', cu -> 'non_finite');
      w := mlops._wasserstein_quantiles(qr, qc);
      det := det || pg_catalog.jsonb_build_object('wasserstein', w);
      if m = 'ks' then
        if r -> 'values' <> 'null'::jsonb then
          rv := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(r -> 'values') x);
          cv := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(summary -> ('__values_' || c)) x);
          select * into t from mlops.ks_2samp(rv, cv);
          perform mlops._drift_result(rid, c, k, 'ks', t.statistic, t.p_value, (th ->> 'ks')::float8,
                                      det || pg_catalog.jsonb_build_object('ks_method', t.method));
        else
          stat := mlops._ks_quantiles(qr, qc);
          pv := mlops._kolmogorov_sf(pg_catalog.sqrt((r ->> 'count')::float8 * (cu ->> 'count')::float8
                                                     / ((r ->> 'count')::float8 + (cu ->> 'count')::float8)) * stat);
          perform mlops._drift_result(rid, c, k, 'ks', stat, pv, (th ->> 'ks')::float8,
                                      det || '{"ks_method": "quantile_approx", "ks_error_bound": 0.002}');
        end if;
      elsif m = 'chi2' then
        if r -> 'values' = 'null'::jsonb then  -- no stored values: chi-square on the PSI bins
          select * into t from mlops.chi2_test(rc, cc);
        else
          select * into t from mlops.chi2_test(
            (select pg_catalog.array_agg(x) from pg_catalog.jsonb_array_elements_text(r -> 'values') x),
            (select pg_catalog.array_agg(x) from pg_catalog.jsonb_array_elements_text(summary -> ('__values_' || c)) x));
        end if;
        perform mlops._drift_result(rid, c, k, 'chi2', t.statistic, t.p_value, (th ->> 'chi2')::float8, det);
      elsif m = 'wasserstein' then
        stat := case when (r ->> 'std')::float8 > 0 then w / (r ->> 'std')::float8 else w end;
        perform mlops._drift_result(rid, c, k, 'wasserstein', stat, null, (th ->> 'wasserstein')::float8, det);
      else
        perform mlops._drift_result(rid, c, k, 'psi', (det ->> 'psi')::float8, null, (th ->> 'psi')::float8, det);
      end if;
    elsif k = 'categorical' then
      keys := (select pg_catalog.array_agg(x order by x) from pg_catalog.jsonb_object_keys(r -> 'categories') x)
              || '{__other__,__unseen__}'::text[];
      rc := (select pg_catalog.array_agg(case when x = '__other__' then (r ->> 'other')::float8
                                              else coalesce((r -> 'categories' ->> x)::float8, 0) end order by o)
               from pg_catalog.unnest(keys) with ordinality u(x, o));
      cc := (select pg_catalog.array_agg(coalesce((summary -> ('__cats_' || c) ->> x)::float8, 0) order by o)
               from pg_catalog.unnest(keys) with ordinality u(x, o));
      -- drop categories absent on both sides
      select pg_catalog.array_agg(x order by o), pg_catalog.array_agg(a order by o), pg_catalog.array_agg(b order by o)
        into keys, rc, cc from unnest(keys, rc, cc) with ordinality u(x, a, b, o) where a + b > 0;
      det := det || pg_catalog.jsonb_build_object('categories', keys, 'reference_counts', rc, 'current_counts', cc,
                                                  'unseen', summary -> ('__cats_' || c) -> '__unseen__',
                                                  'psi', mlops.psi_binned(rc, cc), 'js', mlops.js_distance(rc, cc));
      if m = 'chi2' then
        if pg_catalog.cardinality(keys) < 2 then
          perform mlops._drift_result(rid, c, k, 'chi2', 0, 1, (th ->> 'chi2')::float8, det);
        else
          select * into t from mlops.chi2_test(rc, cc);
          perform mlops._drift_result(rid, c, k, 'chi2', t.statistic, t.p_value, (th ->> 'chi2')::float8, det);
        end if;
      elsif m = 'z' then
        top := (select x from pg_catalog.jsonb_each_text(r -> 'categories') e(x, n) order by n::bigint desc, x limit 1);
        select * into t from mlops.z_test_proportions(coalesce((r -> 'categories' ->> top)::bigint, 0), (r ->> 'count')::bigint,
                                                       coalesce((summary -> ('__cats_' || c) ->> top)::bigint, 0), (cu ->> 'count')::bigint);
        perform mlops._drift_result(rid, c, k, 'z', t.z, t.p_value, (th ->> 'z')::float8,
                                    det || pg_catalog.jsonb_build_object('category', top));
      elsif m = 'js' then
        perform mlops._drift_result(rid, c, k, 'js', (det ->> 'js')::float8, null, (th ->> 'js')::float8, det);
      else
        perform mlops._drift_result(rid, c, k, 'psi', (det ->> 'psi')::float8, null, (th ->> 'psi')::float8, det);
      end if;
    else
      if (cu ->> 'dim')::int <> (r ->> 'dim')::int then
        raise exception using errcode = '22023',
          message = pg_catalog.format('vector column %L has dimension %s in the current data but %s in profile %L',
                                      c, cu ->> 'dim', r ->> 'dim', prof.name);
      end if;
      refc := (select pg_catalog.array_agg(x::real) from pg_catalog.jsonb_array_elements_text(r -> 'centroid') x);
      curc := (select pg_catalog.array_agg(x::real) from pg_catalog.jsonb_array_elements_text(cu -> 'centroid') x);
      refvar := (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(r -> 'variance') x);
      det := det || pg_catalog.jsonb_build_object(
        'dim', r -> 'dim', 'reference_magnitude', r -> 'magnitude', 'current_magnitude', cu -> 'magnitude',
        'reference_dimension_variance', (select pg_catalog.avg(v) from pg_catalog.unnest(refvar) v),
        'current_dimension_variance', (select pg_catalog.avg(greatest(x::float8 - y::float8 * y::float8, 0))
                                         from pg_catalog.jsonb_array_elements_text(cu -> 'second_moment') with ordinality a(x, o)
                                         join pg_catalog.jsonb_array_elements_text(cu -> 'centroid') with ordinality b(y, o2) on o = o2));
      curvar := (select pg_catalog.array_agg(greatest(x::float8 - y::float8 * y::float8, 0) order by o)
                   from pg_catalog.jsonb_array_elements_text(cu -> 'second_moment') with ordinality a(x, o)
                   join pg_catalog.jsonb_array_elements_text(cu -> 'centroid') with ordinality b(y, o2) on o = o2);
      nr := (r ->> 'count')::float8; nc := (cu ->> 'count')::float8;
      -- ||mean_c - mean_r||^2 over its expectation under no drift, sum(var_r / n_r + var_c / n_c):
      -- about 1 without drift, so small samples do not flag a noisy centroid
      noise_ratio := (select pg_catalog.sum((a - b) ^ 2) / nullif(pg_catalog.sum(vr / nr + vc / nc), 0)
                        from unnest(refc, curc, refvar, curvar) u(a, b, vr, vc));
      stat := coalesce(refc::vector <=> curc::vector, 0);  -- NaN-free: a zero centroid gives distance 0
      if stat = 'NaN'::float8 then stat := 0; end if;
      perform mlops._drift_result(rid, c, k, 'centroid_cosine', stat, null, (th ->> 'centroid_cosine')::float8,
                                  det || pg_catalog.jsonb_build_object('noise_ratio', noise_ratio),
                                  coalesce(noise_ratio > 2, true));
      stat := (select pg_catalog.avg((pg_catalog.abs(a - b) >= 0.1 * pg_catalog.sqrt(vr)
                                      and pg_catalog.abs(a - b) > 1.96 * pg_catalog.sqrt(vr / nr + vc / nc)
                                      and pg_catalog.abs(a - b) > 1e-12)::int)
                 from unnest(refc, curc, refvar, curvar) u(a, b, vr, vc));
      perform mlops._drift_result(rid, c, k, 'dimension_share', stat, null, (th ->> 'dimension_share')::float8,
                                  pg_catalog.jsonb_build_object('rule', '|mean_c - mean_r| >= 0.1 std_r and significant (|z| > 1.96)'));
      -- a random sample of current vectors (second scan, vector columns only): as many as the MMD
      -- sample and the nearest-neighbour probes need; ordinals in random order.
      -- Seeded so a run is reproducible on the same data (resets this session's random() sequence).
      perform pg_catalog.setseed(0.42);
      if pg_catalog.to_regclass('pg_temp._drift_cur_sample') is not null then
        drop table pg_temp._drift_cur_sample;
      end if;
      n_mmd := (r ->> 'mmd_sample')::integer; n_nn := (r ->> 'nn_reference')::integer;
      execute pg_catalog.format('create temp table _drift_cur_sample as select pg_catalog.row_number() over (order by x.r) as ordinal, v '
                                'from (select %1$I as v, pg_catalog.random() as r from %2$s s where %1$I is not null '
                                'order by 2 limit %3$s) x', c, src.sub, greatest(n_mmd, least(n_nn, mlops._drift_nn_probes())));
      -- nearest-neighbour distance drift: share of (up to 1,000, mlops._drift_nn_probes) current vectors whose
      -- nearest reference vector (HNSW index scan, cosine) is farther than the reference's own p95
      nn_index := mlops._drift_nn_index(prof.id, c, (r ->> 'dim')::integer, n_nn, false);  -- missing after a restore
      select x.figure, x.probe_count into stat, n_probe
        from mlops._drift_nn_exec(prof.id, c, (r ->> 'dim')::integer, n_nn, 'current', (r ->> 'nn_p95')::float8) x;
      perform mlops._drift_result(rid, c, k, 'nn_share', stat, null, (th ->> 'nn_share')::float8,
                                  pg_catalog.jsonb_build_object('reference_nn_p95', r -> 'nn_p95', 'metric', 'cosine',
                                    'reference_vectors', n_nn, 'current_vectors', n_probe, 'index', nn_index,
                                    'rule', 'share of current vectors farther (cosine) from their nearest reference vector than the reference p95'));
      if pg_catalog.to_regprocedure('mlops.mmd_rbf(real[], real[], integer)') is not null then
        execute 'select * from mlops.mmd_rbf($1, $2, 200)' into t
          using (select pg_catalog.array_agg(o.embedding::real[] order by o.ordinal) from mlops.drift_profile_vectors o
                  where o.profile_id = prof.id and o.column_name = c and o.ordinal <= n_mmd),
                (select pg_catalog.array_agg(s.v::real[] order by s.ordinal) from pg_temp._drift_cur_sample s
                  where s.ordinal <= n_mmd);
        perform mlops._drift_result(rid, c, k, 'mmd', t.mmd2, t.p_value, (th ->> 'mmd')::float8,
                                    pg_catalog.jsonb_build_object('bandwidth', t.bandwidth, 'permutations', 200,
                                                                  'sample', n_mmd));
      end if;
      drop table pg_temp._drift_cur_sample;
    end if;
  end loop;

  select pg_catalog.count(distinct d.column_name), pg_catalog.count(distinct d.column_name) filter (where d.drifted),
         pg_catalog.array_agg(distinct d.column_name) filter (where d.drifted)
    into n_total, n_drifted, drifted_cols from mlops.drift_results d where d.run_id = rid;
  share := n_drifted::float8 / greatest(n_total, 1);
  update mlops.drift_runs u set finished_at = pg_catalog.clock_timestamp(), columns_total = n_total,
         columns_drifted = n_drifted, share_drifted = share, dataset_drift = share >= mon.drift_share
   where u.id = rid;
  update mlops.drift_monitors u set last_run_at = pg_catalog.now() where u.id = mon.id;
  if share >= mon.drift_share then
    perform mlops._raise_alert('drift', mon.name, 'warning',
      pg_catalog.format('dataset drift on monitor %s: %s of %s columns drifted (%s)', mon.name, n_drifted, n_total,
                        pg_catalog.array_to_string(drifted_cols, ', ')),
      pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('monitor', mon.name, 'run', rid, 'share_drifted', share,
                                                                 'drifted_columns', drifted_cols, 'model', mon.model)));
  else
    perform mlops.resolve_alerts('drift', mon.name);
  end if;
  perform pg_catalog.pg_notify('mlops_drift', pg_catalog.jsonb_build_object('monitor', mon.name, 'run', rid,
            'dataset_drift', share >= mon.drift_share, 'share_drifted', share)::text);
  return query select * from mlops.drift_results d where d.run_id = rid order by d.column_name, d.method;
end
$$;
comment on function mlops.run_drift_monitor(text) is
  'Runs a drift monitor now: writes mlops.drift_runs / drift_results, raises or resolves its drift alert, NOTIFYs mlops_drift; returns the results.';

-- Runs every enabled monitor whose schedule is due (never run, or last_run_at + schedule <= now()).
-- For pg_cron: select cron.schedule('pgmlops-drift', '*/5 * * * *', 'select * from mlops.run_due_monitors()').
-- A failing monitor is reported (error column) and does not stop the others.
create or replace function mlops.run_due_monitors()
returns table (monitor text, run_id bigint, dataset_drift boolean, error text)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mname text;
begin
  for mname in
    select d.name from mlops.drift_monitors d
     where d.enabled and d.schedule is not null and (d.last_run_at is null or d.last_run_at + d.schedule <= pg_catalog.now())
     order by d.name
  loop
    monitor := mname; run_id := null; dataset_drift := null; error := null;
    begin
      perform mlops.run_drift_monitor(mname);
      select r.id, r.dataset_drift into run_id, dataset_drift from mlops.drift_runs r
        join mlops.drift_monitors d on d.id = r.monitor_id where d.name = mname order by r.id desc limit 1;
    exception when others then
      error := sqlerrm;
      perform mlops._raise_alert('drift', mname, 'critical', pg_catalog.format('drift monitor %s failed: %s', mname, sqlerrm),
                                 pg_catalog.jsonb_build_object('monitor', mname, 'error', sqlerrm, 'sqlstate', sqlstate));
    end;
    return next;
  end loop;
end
$$;
comment on function mlops.run_due_monitors() is
  'Runs every enabled drift monitor whose schedule is due (for pg_cron or `pgmlops drift run-due`); one row per monitor.';
