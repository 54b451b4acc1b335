-- Reference profiles: the reference data is summarized once (quantiles, histograms, category
-- frequencies, moments, vector centroid / variance / sample) so monitors never re-read it.

-- Private: the 1001 quantile levels 0, 0.001, ..., 1 stored per numeric column.
create or replace function mlops._drift_levels() returns double precision[]
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$ select pg_catalog.array_agg(i / 1000.0::float8 order by i) from pg_catalog.generate_series(0, 1000) i $$;
comment on function mlops._drift_levels() is 'Private: quantile levels 0, 0.001, ..., 1 of numeric column profiles.';

-- Private: the data source of a profile or monitor as a parenthesized subquery: a user query,
-- a model's prediction log (joined with feedback: column correct) in a time window, or a
-- feature group table in schema mlops_features.
create or replace function mlops._drift_source(query text, model text, feature_group text,
                                               window_start timestamptz, window_end timestamptz,
                                               out kind text, out source text, out sub text)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
begin
  if (query is not null)::int + (model is not null)::int + (feature_group is not null)::int <> 1 then
    raise exception using errcode = '22023', message = 'give exactly one of query, model or feature_group',
      hint = 'query => ''select ... from ...'', or model => ''churn'' (prediction log), or feature_group => ''customers''.';
  end if;
  if window_start is not null and window_end is not null and window_end <= window_start then
    raise exception using errcode = '22023',
      message = pg_catalog.format('window_end %s must be after window_start %s', window_end, window_start);
  end if;
  if query is not null then
    query := pg_catalog.rtrim(pg_catalog.btrim(query), '; ');
    if query = '' then
      raise exception using errcode = '22023', message = 'query is empty';
    end if;
    kind := 'query'; source := query; sub := pg_catalog.format('(%s)', query);
  elsif model is not null then
    perform mlops._check_name(model, 'model');
    kind := 'model'; source := model;
    sub := pg_catalog.format(
      '(select p.score, p.label, p.confidence, p.feature_vector, f.correct, p.created_at from mlops.predictions p '
      'left join mlops.prediction_feedback f on f.request_id = p.request_id '
      'where p.model = %L and p.created_at >= %L and p.created_at < %L)',
      model, coalesce(window_start, '-infinity'::timestamptz), coalesce(window_end, 'infinity'::timestamptz));
  else
    perform mlops._check_name(feature_group, 'feature_group');
    -- The current version's history table (mlops_features.<group>__v<n>), windowed on event_ts.
    select g.table_name into sub from mlops.feature_group_versions g
     where g.name = feature_group and g.is_current;
    if sub is null then
      raise exception using errcode = '42704',
        message = pg_catalog.format('unknown feature_group %L (argument feature_group)', feature_group),
        hint = 'Create it with mlops.create_feature_group(...).';
    end if;
    kind := 'feature_group'; source := feature_group;
    sub := pg_catalog.format('(select * from mlops_features.%I where event_ts >= %L and event_ts < %L)', sub,
                             coalesce(window_start, '-infinity'::timestamptz), coalesce(window_end, 'infinity'::timestamptz));
  end if;
end
$$;
comment on function mlops._drift_source(text, text, text, timestamptz, timestamptz) is
  'Private: validates the data source of a drift profile or monitor and returns it as a subquery.';

-- Private: columns of a source with their drift kind (numeric, categorical, vector). Unknown
-- columns raise 42703, unsupported types 22023, both naming the column.
create or replace function mlops._drift_columns(sub text, columns text[], default_columns text[] default null)
returns table (column_name text, kind text)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  c text;
  k text;
  wanted text[] := coalesce(columns, default_columns);
begin
  if pg_catalog.to_regclass('pg_temp._drift_shape') is not null then
    drop table pg_temp._drift_shape;
  end if;
  begin
    execute pg_catalog.format('create temp table _drift_shape as select * from %s s limit 0', sub);
  exception when syntax_error or undefined_table or undefined_column or undefined_function then
    raise exception using errcode = sqlstate, message = pg_catalog.format('query is not valid: %s', sqlerrm);
  end;
  if pg_catalog.to_regclass('pg_temp._drift_cols') is null then
    create temp table _drift_cols (column_name text, kind text, ord int);
  end if;
  truncate pg_temp._drift_cols;
  insert into pg_temp._drift_cols
  select a.attname::text,
         case when a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'float4'::regtype,
                                  'float8'::regtype, 'numeric'::regtype) then 'numeric'
              when a.atttypid in ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'bool'::regtype,
                                  'name'::regtype) then 'categorical'
              when a.atttypid = (select t.oid from pg_catalog.pg_type t
                                   join pg_catalog.pg_extension x on x.extnamespace = t.typnamespace
                                  where x.extname = 'vector' and t.typname = 'vector') then 'vector'
              else 'unsupported:' || pg_catalog.format_type(a.atttypid, null) end,
         a.attnum
    from pg_catalog.pg_attribute a
   where a.attrelid = 'pg_temp._drift_shape'::regclass and a.attnum > 0 and not a.attisdropped;
  if columns is not null and pg_catalog.cardinality(columns) = 0 then
    raise exception using errcode = '22023', message = 'columns is empty';
  end if;
  if wanted is null then
    wanted := (select pg_catalog.array_agg(d.column_name order by d.ord) from pg_temp._drift_cols d
                where d.kind not like 'unsupported:%');
  end if;
  foreach c in array coalesce(wanted, '{}') loop
    select d.kind into k from pg_temp._drift_cols d where d.column_name = c;
    if k is null then
      if columns is null then
        continue;  -- default columns of a model source that this log does not have
      end if;
      raise exception using errcode = '42703', message = pg_catalog.format('column %L is not in the source given by the query, model or feature_group argument', c),
        hint = (select 'Columns: ' || pg_catalog.string_agg(d.column_name, ', ' order by d.ord) from pg_temp._drift_cols d);
    end if;
    if k like 'unsupported:%' then
      raise exception using errcode = '22023',
        message = pg_catalog.format('column %L has type %s: drift needs a number, text, boolean or vector column',
                                    c, pg_catalog.substr(k, 13));
    end if;
    column_name := c; kind := k;
    return next;
  end loop;
  drop table pg_temp._drift_shape;
end
$$;
comment on function mlops._drift_columns(text, text[], text[]) is
  'Private: resolves the columns of a drift source and classifies them numeric / categorical / vector.';

-- Private: a numeric column as float8 with NaN and +/-Infinity mapped to NULL (they are counted
-- separately as non_finite and excluded from every statistic).
create or replace function mlops._drift_num(col text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.format('(case when %1$I::float8 in (''NaN''::float8, ''Infinity''::float8, ''-Infinity''::float8) '
                           'then null else %1$I::float8 end)', col)
$$;
comment on function mlops._drift_num(text) is 'Private: SQL expression of a numeric column with non-finite values as NULL.';

-- Private: one-scan aggregate select-list of a set of columns (counts, moments, quantiles,
-- vector centroid / second moment / magnitude), as a jsonb object per column.
create or replace function mlops._drift_scan_exprs(cols text[], kinds text[]) returns text
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  parts text[] := '{}';
  i integer;
  e text;
begin
  for i in 1..coalesce(pg_catalog.cardinality(cols), 0) loop
    if kinds[i] = 'numeric' then
      e := pg_catalog.format('%I', 'n#' || cols[i]);  -- computed once per row by mlops._drift_scan
      parts := parts || pg_catalog.format(
        'pg_catalog.jsonb_build_object(%L, pg_catalog.jsonb_build_object(''type'', ''numeric'', ''count'', pg_catalog.count(%2$s), '
        '''nulls'', pg_catalog.count(*) - pg_catalog.count(%3$I), ''non_finite'', pg_catalog.count(%3$I) - pg_catalog.count(%2$s), '
        '''mean'', pg_catalog.avg(%2$s), ''std'', pg_catalog.stddev_pop(%2$s), ''min'', pg_catalog.min(%2$s), ''max'', pg_catalog.max(%2$s), '
        '''quantiles'', pg_catalog.percentile_cont(mlops._drift_levels()) within group (order by %2$s)))',
        cols[i], e, cols[i]);
    elsif kinds[i] = 'categorical' then
      parts := parts || pg_catalog.format(
        'pg_catalog.jsonb_build_object(%L, pg_catalog.jsonb_build_object(''type'', ''categorical'', ''count'', pg_catalog.count(%2$I), '
        '''nulls'', pg_catalog.count(*) - pg_catalog.count(%2$I)))', cols[i], cols[i]);
    else
      parts := parts || pg_catalog.format(
        'pg_catalog.jsonb_build_object(%L, pg_catalog.jsonb_build_object(''type'', ''vector'', ''count'', pg_catalog.count(%2$I), '
        '''nulls'', pg_catalog.count(*) - pg_catalog.count(%2$I), ''dim'', pg_catalog.max(vector_dims(%2$I)), '
        '''min_dim'', pg_catalog.min(vector_dims(%2$I)), ''centroid'', avg(%2$I)::real[], '
        '''second_moment'', avg(%2$I * %2$I)::real[], ''magnitude'', pg_catalog.avg(vector_norm(%2$I)), '
        '''magnitude_std'', pg_catalog.stddev_pop(vector_norm(%2$I))))', cols[i], cols[i]);
    end if;
  end loop;
  return 'pg_catalog.jsonb_build_object(''__rows'', pg_catalog.count(*))'
         || coalesce(' || ' || pg_catalog.array_to_string(parts, ' || '), '');
end
$$;
comment on function mlops._drift_scan_exprs(text[], text[]) is
  'Private: builds the one-scan aggregate expression summarizing columns of a drift source.';

-- Private: runs the one-scan summary, turning pgvector dimension mismatches into a clear error.
-- Each numeric column is cleaned once per row into "n#<col>" (and, when a profile is given, its
-- PSI bin into "b#<col>") in an optimization-fenced subquery, so the aggregates reuse them.
create or replace function mlops._drift_scan(sub text, cols text[], kinds text[], argument text, extra text default null,
                                             prof jsonb default null, base boolean default true)
returns jsonb
language plpgsql volatile set search_path from current
as $$
declare
  result jsonb;
  v text;
  inner_sql text := sub;
  clean text;
  buckets text;
begin
  select pg_catalog.string_agg(pg_catalog.format('%s as %I', mlops._drift_num(c), 'n#' || c), ', ')
    into clean from unnest(cols, kinds) t(c, k) where k = 'numeric';
  if clean is not null then
    inner_sql := pg_catalog.format('(select s.*, %s from %s s offset 0)', clean, sub);
    if prof is not null then
      select pg_catalog.string_agg(pg_catalog.format('pg_catalog.width_bucket(%I, %L::float8[]) as %I', 'n#' || c,
                                                     (select pg_catalog.array_agg(x::float8) from pg_catalog.jsonb_array_elements_text(prof -> c -> 'edges') x),
                                                     'b#' || c), ', ')
        into buckets from unnest(cols, kinds) t(c, k) where k = 'numeric';
      inner_sql := pg_catalog.format('(select q.*, %s from %s q offset 0)', buckets, inner_sql);
    end if;
  end if;
  begin
    execute pg_catalog.format('select %s%s from %s s',
                              case when base then mlops._drift_scan_exprs(cols, kinds)
                                   else 'pg_catalog.jsonb_build_object(''__rows'', pg_catalog.count(*))' end,
                              coalesce(' || ' || extra, ''), inner_sql) into result;
  exception when data_exception then
    raise exception using errcode = '22000',
      message = pg_catalog.format('%s data cannot be summarized (vector columns: %s): %s', argument,
                                  (select pg_catalog.string_agg(c, ', ') from unnest(cols, kinds) t(c, k) where k = 'vector'), sqlerrm),
      hint = 'Vectors of one column must all have the same dimension.';
  end;
  for v in select c from unnest(cols, kinds) t(c, k) where k = 'vector' loop
    if base and (result -> v ->> 'min_dim')::int <> (result -> v ->> 'dim')::int then
      raise exception using errcode = '22000',
        message = pg_catalog.format('%s column %L mixes vector dimensions %s and %s', argument, v,
                                    result -> v ->> 'min_dim', result -> v ->> 'dim');
    end if;
  end loop;
  return result;
end
$$;
comment on function mlops._drift_scan(text, text[], text[], text, text, jsonb, boolean) is
  'Private: one aggregate scan of a drift source returning per-column summaries.';

-- Private: how many vectors probe the nearest-neighbour reference set: the reference's own p95
-- is estimated from this many (leave-one-out) reference vectors at profile creation, and a monitor
-- run samples this many current vectors. 1,000 probes put the standard error of a drifted share
-- near 5% at 0.007 (at most 0.016 for any share), far below the 0.2 default threshold, while keeping
-- the index scans (one per probe, hnsw.ef_search = 40) to about a second.
create or replace function mlops._drift_nn_probes() returns integer
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$ select 1000 $$;
comment on function mlops._drift_nn_probes() is
  'Private: number of probe vectors (reference p95 estimate, current sample) of nearest-neighbour distance drift: 1000.';

-- Private: name of the HNSW index over one profile column's nearest-neighbour reference vectors.
create or replace function mlops._drift_nn_index_name(profile_id bigint, column_name text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$ select pg_catalog.format('drift_nn_%s_%s', profile_id, pg_catalog.left(pg_catalog.md5(column_name), 8)) $$;
comment on function mlops._drift_nn_index_name(bigint, text) is
  'Private: name of the partial HNSW index of a profile vector column (drift_nn_<profile id>_<md5 prefix of the column>).';

-- Private: (re)builds the partial HNSW index (cosine) over the first n stored reference vectors of
-- one profile vector column, on the expression embedding::vector(dim) (HNSW needs a fixed
-- dimension; the shared table holds vectors of any dimension). rebuild => false only creates a
-- missing index (pg_dump does not carry indexes of extension tables). Also drops the indexes of
-- deleted profiles. Vectors wider than 2000 dimensions cannot be HNSW-indexed: returns null and
-- the nearest-neighbour queries stay exact scans. SECURITY DEFINER: only the owner of the
-- extension's table may index it; it takes ids and a checked column, never SQL text.
create or replace function mlops._drift_nn_index(profile_id bigint, column_name text, dim integer, n integer,
                                                 rebuild boolean default true)
returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  idx text := mlops._drift_nn_index_name(profile_id, column_name);
  stale text;
  vs name := mlops._vector_schema();
begin
  if not exists (select from mlops.drift_profiles p where p.id = _drift_nn_index.profile_id
                  and p.columns -> _drift_nn_index.column_name ->> 'type' = 'vector') then
    raise exception using errcode = '42704',
      message = pg_catalog.format('profile %s has no vector column %L', profile_id, column_name);
  end if;
  if n is null or n < 1 then
    raise exception using errcode = '22023', message = pg_catalog.format('n must be positive, got %s', n);
  end if;
  for stale in
    select c.relname from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indexrelid
     where i.indrelid = 'mlops.drift_profile_vectors'::regclass and c.relname ~ '^drift_nn_[0-9]+_'
       and not exists (select from mlops.drift_profiles p
                        where p.id = pg_catalog.substring(c.relname::text, '^drift_nn_([0-9]+)_')::bigint)
  loop
    execute pg_catalog.format('drop index mlops.%I', stale);
  end loop;
  if dim is null or dim < 1 or dim > 2000 then
    return null;
  end if;
  if rebuild and pg_catalog.to_regclass(pg_catalog.format('mlops.%I', idx)) is not null then
    execute pg_catalog.format('drop index mlops.%I', idx);
  end if;
  if pg_catalog.to_regclass(pg_catalog.format('mlops.%I', idx)) is not null then
    return idx;
  end if;
  execute pg_catalog.format(
    'create index %I on mlops.drift_profile_vectors using hnsw ((embedding::%I.vector(%s)) %I.vector_cosine_ops) '
    'where profile_id = %s and column_name = %L and ordinal <= %s', idx, vs, dim, vs, profile_id, column_name, n);
  return idx;
end
$$;
comment on function mlops._drift_nn_index(bigint, text, integer, integer, boolean) is
  'Private: builds the partial HNSW (cosine) index over a profile column''s nearest-neighbour reference vectors.';

-- Private: SQL giving, for each probe vector, the cosine distance d to its nearest stored
-- reference vector among the first n of a profile column: one HNSW index scan per probe
-- (LATERAL ... order by <=> limit 1). The probes (the first mlops._drift_nn_probes() non-zero
-- vectors) are either 'reference': the column's own reference vectors, skipping the probe itself
-- (the reference's leave-one-out distances), or 'current': this session's pg_temp._drift_cur_sample
-- (made by run_drift_monitor). A kind, not SQL text, comes in: every piece is quoted here.
create or replace function mlops._drift_nn_sql(profile_id bigint, column_name text, dim integer, n integer,
                                               probes text)
returns text
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  vs name := mlops._vector_schema();
  k integer := least(n, mlops._drift_nn_probes());
  probe text;
begin
  if probes = 'reference' then
    probe := pg_catalog.format('(select o.ordinal, o.embedding as v from mlops.drift_profile_vectors o '
                               'where o.profile_id = %s and o.column_name = %L and o.ordinal <= %s '
                               'and %I.vector_norm(o.embedding) > 0)', profile_id, column_name, k, vs);
  elsif probes = 'current' then
    probe := pg_catalog.format('(select c.ordinal, c.v from pg_temp._drift_cur_sample c '
                               'where c.ordinal <= %s and %I.vector_norm(c.v) > 0)', k, vs);
  else
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid probes %L: must be reference or current', probes);
  end if;
  return pg_catalog.format(
    'select nn.d from %1$s s, lateral (select o.embedding::%2$I.vector(%3$s) operator(%2$I.<=>) s.v as d '
    'from mlops.drift_profile_vectors o where o.profile_id = %4$s and o.column_name = %5$L and o.ordinal <= %6$s%7$s '
    'order by o.embedding::%2$I.vector(%3$s) operator(%2$I.<=>) s.v limit 1) nn',
    probe, vs, dim, profile_id, column_name, n,
    case when probes = 'reference' then ' and o.ordinal <> s.ordinal' else '' end);
end
$$;
comment on function mlops._drift_nn_sql(bigint, text, integer, integer, text) is
  'Private: nearest-reference cosine distance of each probe vector (reference or current) through the profile '
  'column''s HNSW index.';

-- Private: the nearest-neighbour statistic over mlops._drift_nn_sql's distances, with the number
-- of probes: for 'reference' probes their p95 distance, for 'current' probes the share farther
-- than threshold. Sorts and sequential scans are disabled, so the planner takes the HNSW index
-- scan even when the shared table's statistics are stale (otherwise it may pick the primary key
-- plus a sort per probe: exact, but one full pass over the reference set per probe). The
-- function's SET clauses restore both settings on exit.
drop function if exists mlops._drift_nn_exec(text);  -- took the query as text
drop function if exists mlops._drift_nn_sql(bigint, text, integer, integer, text, boolean);  -- took the probe as SQL text
create or replace function mlops._drift_nn_exec(profile_id bigint, column_name text, dim integer, n integer,
                                                probes text, threshold float8,
                                                out figure double precision, out probe_count bigint)
language plpgsql volatile set search_path = pg_catalog, pg_temp set enable_sort = off set enable_seqscan = off
as $$
begin
  execute pg_catalog.format('select %s, pg_catalog.count(*) from (%s) x',
                            case when probes = 'reference' then 'pg_catalog.percentile_cont(0.95) within group (order by x.d)'
                                 else pg_catalog.format('pg_catalog.avg((x.d > %L::float8)::int)::float8', threshold) end,
                            mlops._drift_nn_sql(profile_id, column_name, dim, n, probes))
    into figure, probe_count;
end
$$;
comment on function mlops._drift_nn_exec(bigint, text, integer, integer, text, float8) is
  'Private: nearest-neighbour drift statistic (reference p95, or share of current probes beyond threshold) with sorts '
  'and sequential scans disabled (HNSW index scans).';

-- Creates (or with replace => true, recomputes) a named reference profile from a query, a
-- model's prediction log in [window_start, window_end), or a feature group. Stores per column:
-- type, count, nulls, non-finite count, mean/std/min/max, 1001 quantiles, decile PSI edges and
-- counts, all values when there are at most sample_size of them (exact KS), category
-- frequencies (top 1000, rest as __other__), vector centroid / per-dimension variance /
-- magnitude, and a random sample of greatest(vector_sample, nn_reference) reference vectors in
-- mlops.drift_profile_vectors (ordinals in random order): the first vector_sample feed MMD, the
-- first nn_reference (default 10,000) form the nearest-neighbour reference set, indexed with HNSW
-- (cosine); the p95 of the leave-one-out nearest-neighbour distances of (up to 1,000, see
-- mlops._drift_nn_probes) of them is stored as nn_p95.
-- Zero vectors have no cosine direction and are left out of the nearest-neighbour statistic.
create or replace function mlops.create_reference_profile(
  name text, query text default null, model text default null, feature_group text default null,
  window_start timestamptz default null, window_end timestamptz default null, columns text[] default null,
  sample_size integer default 1000, vector_sample integer default 500, nn_reference integer default 10000,
  replace boolean default false)
returns bigint
language plpgsql volatile set search_path from current set hnsw.ef_search = '40'
as $$
declare
  src record;
  cols text[];
  kinds text[];
  summary jsonb;
  prof jsonb := '{}';
  col jsonb;
  c text;
  k text;
  e text;
  edges double precision[];
  extra jsonb;
  prof_id bigint;
  numcols text[] := '{}';
  valexprs text[] := '{}';
  i integer;
  n_vec bigint;
  n_nn integer;
  dim integer;
  nn_index text;
  nn_p95 double precision;
begin
  perform mlops._check_name(name, 'name');
  if sample_size is null or sample_size < 10 or sample_size > 100000 then
    raise exception using errcode = '22023', message = pg_catalog.format('sample_size must be between 10 and 100000, got %s', sample_size);
  end if;
  if vector_sample is null or vector_sample < 10 or vector_sample > 10000 then
    raise exception using errcode = '22023', message = pg_catalog.format('vector_sample must be between 10 and 10000, got %s', vector_sample);
  end if;
  if nn_reference is null or nn_reference < 10 or nn_reference > 1000000 then
    raise exception using errcode = '22023', message = pg_catalog.format('nn_reference must be between 10 and 1000000, got %s', nn_reference);
  end if;
  if exists (select from mlops.drift_profiles p where p.name = create_reference_profile.name) and not replace then
    raise exception using errcode = '42710', message = pg_catalog.format('reference profile %L already exists', name),
      hint = 'Pass replace => true to recompute it.';
  end if;
  src := mlops._drift_source(query, model, feature_group, window_start, window_end);
  select pg_catalog.array_agg(d.column_name), pg_catalog.array_agg(d.kind) into cols, kinds
    from mlops._drift_columns(src.sub, columns,
                              case when src.kind = 'model' then '{score,label,feature_vector,correct}'::text[] end) d;
  if cols is null then
    raise exception using errcode = '22023', message = 'the source has no numeric, text, boolean or vector column to profile';
  end if;
  summary := mlops._drift_scan(src.sub, cols, kinds, 'reference');
  if (summary ->> '__rows')::bigint = 0 then
    raise exception using errcode = '22023', message = 'the reference set is empty: the source returned no rows',
      hint = 'Check the query, model name or time window.';
  end if;

  for i in 1..pg_catalog.cardinality(cols) loop
    c := cols[i]; k := kinds[i]; col := summary -> c;
    if (col ->> 'count')::bigint = 0 and columns is null and src.kind = 'model' then
      continue;  -- a default prediction-log column this model never fills (e.g. feature_vector)
    end if;
    if (col ->> 'count')::bigint = 0 then
      raise exception using errcode = '22023',
        message = pg_catalog.format('reference column %L has no usable value (all NULL or non-finite)', c),
        hint = 'Leave it out of columns.';
    end if;
    if k = 'numeric' then
      select pg_catalog.array_agg(distinct q order by q) into edges
        from pg_catalog.generate_series(1, 9) j,
             lateral (select (col -> 'quantiles' ->> (j * 100))::float8 as q) x;
      col := col || pg_catalog.jsonb_build_object('edges', edges);
      numcols := numcols || c;
      if (col ->> 'count')::bigint <= sample_size then  -- small enough: keep every value (exact KS)
        valexprs := valexprs || pg_catalog.format(
          'pg_catalog.jsonb_build_object(%1$L, pg_catalog.array_agg(%3$I order by %3$I) filter (where %3$I is not null), '
          '%2$L, pg_catalog.count(distinct %3$I))', '__values_' || c, '__distinct_' || c, 'n#' || c);
      end if;
    elsif k = 'categorical' then
      execute pg_catalog.format(
        'select pg_catalog.jsonb_build_object(''categories'', coalesce(pg_catalog.jsonb_object_agg(k, n) filter (where r <= 1000), ''{}''), '
        '''other'', coalesce(pg_catalog.sum(n) filter (where r > 1000), 0), ''distinct'', pg_catalog.count(*)) '
        'from (select %1$I::text as k, pg_catalog.count(*) as n, pg_catalog.row_number() over (order by pg_catalog.count(*) desc, %1$I::text) as r '
        '        from %2$s s where %1$I is not null group by 1) g', c, src.sub) into extra;
      col := col || extra;
    else
      col := (col - 'second_moment') || pg_catalog.jsonb_build_object('variance',
        (select pg_catalog.to_jsonb(pg_catalog.array_agg(greatest(m2 - m * m, 0)::float8 order by o))
           from pg_catalog.jsonb_array_elements_text(col -> 'second_moment') with ordinality a(m2t, o)
           join pg_catalog.jsonb_array_elements_text(col -> 'centroid') with ordinality b(mt, o2) on o2 = o,
           lateral (select a.m2t::float8 as m2, b.mt::float8 as m) x));
    end if;
    prof := prof || pg_catalog.jsonb_build_object(c, col);
  end loop;

  -- second pass, all numeric columns at once: counts per PSI bin, and values when few
  if pg_catalog.cardinality(numcols) > 0 then
    extra := mlops._drift_scan(src.sub, numcols, pg_catalog.array_fill('numeric'::text, array[pg_catalog.cardinality(numcols)]),
                               'reference',
                               pg_catalog.concat_ws(' || ', nullif(mlops._drift_current_exprs(numcols,
                                   pg_catalog.array_fill('numeric'::text, array[pg_catalog.cardinality(numcols)]),
                                   pg_catalog.array_fill('psi'::text, array[pg_catalog.cardinality(numcols)]), prof), ''),
                                 nullif(pg_catalog.array_to_string(valexprs, ' || '), '')),
                               prof, false);
    foreach c in array numcols loop
      prof := pg_catalog.jsonb_set(prof, array[c], prof -> c || pg_catalog.jsonb_build_object(
                'hist', extra -> ('__hist_' || c), 'values', extra -> ('__values_' || c),
                'distinct', extra -> ('__distinct_' || c)));
    end loop;
  end if;

  delete from mlops.drift_profiles p where p.name = create_reference_profile.name
     and not exists (select from mlops.drift_monitors m where m.profile_id = p.id);
  update mlops.drift_profiles p
     set source_kind = src.kind, source = src.source, window_start = create_reference_profile.window_start,
         window_end = create_reference_profile.window_end, row_count = (summary ->> '__rows')::bigint,
         columns = prof, created_at = pg_catalog.now(), created_by = current_user
   where p.name = create_reference_profile.name
  returning p.id into prof_id;
  if prof_id is null then
    insert into mlops.drift_profiles (name, source_kind, source, window_start, window_end, row_count, columns)
    values (name, src.kind, src.source, window_start, window_end, (summary ->> '__rows')::bigint, prof)
    returning id into prof_id;
  end if;
  delete from mlops.drift_profile_vectors v where v.profile_id = prof_id;
  perform pg_catalog.setseed(0.42);  -- reproducible vector samples (resets this session's random() sequence)
  for i in 1..pg_catalog.cardinality(cols) loop
    continue when kinds[i] <> 'vector' or not prof ? cols[i];
    c := cols[i];
    execute pg_catalog.format(
      'insert into mlops.drift_profile_vectors (profile_id, column_name, ordinal, embedding) '
      'select %1$s, %2$L, pg_catalog.row_number() over (order by r), v from (select %2$I as v, pg_catalog.random() as r '
      'from %3$s s where %2$I is not null order by 2 limit %4$s) x', prof_id, c, src.sub, greatest(vector_sample, nn_reference));
    get diagnostics n_vec = row_count;
    dim := (prof -> c ->> 'dim')::integer;
    n_nn := least(n_vec, nn_reference);
    nn_index := mlops._drift_nn_index(prof_id, c, dim, n_nn);
    -- the reference's own nearest-neighbour distances (leave-one-out), one index scan per vector
    select x.figure into nn_p95 from mlops._drift_nn_exec(prof_id, c, dim, n_nn, 'reference', null) x;
    update mlops.drift_profiles p
       set columns = pg_catalog.jsonb_set(p.columns, array[c], p.columns -> c || pg_catalog.jsonb_build_object(
             'nn_p95', nn_p95, 'nn_metric', 'cosine', 'nn_reference', n_nn, 'nn_index', nn_index,
             'mmd_sample', least(n_vec, vector_sample)))
     where p.id = prof_id;
  end loop;
  return prof_id;
end
$$;
comment on function mlops.create_reference_profile(text, text, text, text, timestamptz, timestamptz, text[], integer, integer, integer, boolean) is
  'Summarizes reference data (query, model prediction log + window, or feature group) into a stored profile; returns its id. Example: mlops.create_reference_profile(name => ''ref'', query => ''select * from t'').';
