-- Prediction logging: partition management, retention, single and set-based logging,
-- staged COPY ingestion, feedback.

-- The prediction settings row, or the defaults when nobody configured anything (no seeded row).
create or replace function mlops._prediction_settings() returns mlops.prediction_settings
language sql stable set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select s from mlops.prediction_settings s),
                  row(true, interval '1 day', 3, null::interval, pg_catalog.now())::mlops.prediction_settings)
$$;
comment on function mlops._prediction_settings() is
  'Private: the configured prediction settings, or the defaults (1 day partitions, 3 ahead, no retention).';

-- Creates the partition of mlops.predictions holding ts (bounds aligned on the configured
-- interval, UTC, clipped to neighbours) plus `premake` partitions after it. Security definer:
-- writers log rows but only the owner of mlops.predictions may create partitions.
create or replace function mlops._ensure_prediction_partition(ts timestamptz) returns integer
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  cfg mlops.prediction_settings;
  lo timestamptz;
  hi timestamptz;
  made integer := 0;
  i integer;
  part text;
  probe timestamptz;
begin
  if ts is null or not pg_catalog.isfinite(ts) then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid created_at %s: must be a finite time', ts);
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mlops.predictions partitions'));
  cfg := mlops._prediction_settings();
  -- partitions ahead only around now: a backfill of old rows makes just the partition it needs
  for i in 0 .. case when ts >= pg_catalog.now() - cfg.partition_interval then cfg.premake else 0 end loop
    probe := ts + cfg.partition_interval * i;
    continue when exists (select from mlops.prediction_partitions p
                           where p.lower_bound <= probe and p.upper_bound > probe);
    lo := pg_catalog.date_bin(cfg.partition_interval, probe, '2000-01-01 00:00+00');
    hi := lo + cfg.partition_interval;
    -- clip to the free gap around probe (neighbours may have been made with another interval)
    lo := greatest(lo, (select max(p.upper_bound) from mlops.prediction_partitions p where p.upper_bound <= probe));
    hi := least(hi, (select min(p.lower_bound) from mlops.prediction_partitions p where p.lower_bound > probe));
    part := 'predictions_p' || pg_catalog.to_char(lo at time zone 'UTC', 'YYYYMMDD"_"HH24MISS');
    execute pg_catalog.format('create table mlops.%I partition of mlops.predictions for values from (%L) to (%L)',
                              part, lo, hi);
    execute pg_catalog.format('create index %I on mlops.%I using brin (created_at)', part || '_created_brin', part);
    insert into mlops.prediction_partitions (name, lower_bound, upper_bound) values (part, lo, hi);
    made := made + 1;
  end loop;
  return made;
end
$$;
comment on function mlops._ensure_prediction_partition(timestamptz) is
  'Private: creates the partition of mlops.predictions covering ts and the configured number of partitions ahead.';

-- Changes partition width, partitions made ahead and retention. A new width applies to
-- partitions created afterwards (existing ones keep their bounds).
create or replace function mlops.configure_predictions(partition_interval interval default null,
                                                       premake integer default null,
                                                       retention interval default null) returns jsonb
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  result jsonb;
begin
  if partition_interval is not null and (pg_catalog.date_part('month', partition_interval) <> 0
     or pg_catalog.date_part('year', partition_interval) <> 0 or partition_interval < interval '1 hour'
     or partition_interval > interval '366 days') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid partition_interval %s: must be between 1 hour and 366 days, in days/hours',
                                  partition_interval),
      hint = 'Use e.g. ''1 day'', ''6 hours'' or ''7 days'' (months are not fixed-width).';
  end if;
  if premake is not null and (premake < 0 or premake > 366) then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid premake %s: must be 0..366', premake);
  end if;
  if retention is not null and retention <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid retention %s: must be positive', retention);
  end if;
  insert into mlops.prediction_settings default values on conflict (singleton) do nothing;
  update mlops.prediction_settings s
     set partition_interval = coalesce(configure_predictions.partition_interval, s.partition_interval),
         premake = coalesce(configure_predictions.premake, s.premake),
         retention = coalesce(configure_predictions.retention, s.retention),
         updated_at = pg_catalog.now()
  returning pg_catalog.jsonb_build_object('partition_interval', s.partition_interval::text, 'premake', s.premake,
                                          'retention', s.retention::text) into result;
  return result;
end
$$;
comment on function mlops.configure_predictions(interval, integer, interval) is
  'Sets the partition width (default 1 day), partitions created ahead (default 3) and retention of mlops.predictions.';

-- Drops every partition lying wholly before ts, with the request keys and feedback of that time.
-- A partition straddling ts is kept whole. Returns the number of partitions dropped.
create or replace function mlops.drop_predictions_before(ts timestamptz) returns integer
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  part record;
  dropped integer := 0;
  cutoff timestamptz;
begin
  if ts is null or not pg_catalog.isfinite(ts) then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid ts %s: must be a finite time', ts);
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mlops.predictions partitions'));
  for part in select p.name, p.upper_bound from mlops.prediction_partitions p where p.upper_bound <= ts
               order by p.lower_bound loop
    if pg_catalog.to_regclass(pg_catalog.format('mlops.%I', part.name)) is not null then
      -- the request keys of exactly the rows dropped (and their feedback), found through the key's index
      execute pg_catalog.format($q$
        with gone as (delete from mlops.prediction_requests r using mlops.%I p
                       where r.request_id = p.request_id and r.prediction_id = p.id returning r.request_id)
        delete from mlops.prediction_feedback f using gone where f.request_id = gone.request_id$q$, part.name);
      execute pg_catalog.format('drop table mlops.%I', part.name);
    end if;
    delete from mlops.prediction_partitions p where p.name = part.name;
    cutoff := part.upper_bound;
    dropped := dropped + 1;
  end loop;
  if cutoff is not null then  -- feedback that never met its prediction, as old as the data dropped
    delete from mlops.prediction_feedback f
     where f.created_at < cutoff
       and not exists (select from mlops.prediction_requests r where r.request_id = f.request_id);
  end if;
  return dropped;
end
$$;
comment on function mlops.drop_predictions_before(timestamptz) is
  'Drops the partitions of mlops.predictions that end at or before ts (whole partitions only) and their request keys.';

-- Scheduled upkeep (pg_cron, the CLI or any job runner): partitions ahead of now, retention.
create or replace function mlops.maintain_predictions() returns jsonb
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  made integer;
  dropped integer := 0;
  keep interval;
begin
  made := mlops._ensure_prediction_partition(pg_catalog.now());
  keep := (mlops._prediction_settings()).retention;
  if keep is not null then
    dropped := mlops.drop_predictions_before(pg_catalog.now() - keep);
  end if;
  return pg_catalog.jsonb_build_object('created', made, 'dropped', dropped);
end
$$;
comment on function mlops.maintain_predictions() is
  'Creates partitions ahead of now and applies the retention setting; schedule it (e.g. hourly).';

-- Resolves (model, version, alias) to a model_versions row: version wins, then alias, then the latest version.
-- Security definer so writers need no rights on the registry tables.
create or replace function mlops._prediction_version(model text, version integer, alias text,
                                                     out version_id bigint, out version_number integer,
                                                     out vector_dim integer)
language plpgsql stable security definer parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  select v.id, v.version, (v.signature ->> 'feature_vector_dim')::integer
    into version_id, version_number, vector_dim
    from mlops.models m join mlops.model_versions v on v.model_id = m.id
   where m.name = _prediction_version.model
     and case when _prediction_version.version is not null then v.version = _prediction_version.version
              when _prediction_version.alias is not null then
                v.id = (select a.version_id from mlops.model_aliases a
                         where a.model_id = m.id and a.alias = _prediction_version.alias)
              else true end
   order by v.version desc limit 1;
  if version_id is null then
    raise exception using errcode = '42704',
      message = pg_catalog.format('unknown model %s (version %s, alias %s)', coalesce(pg_catalog.quote_literal(model), 'NULL'),
                                  coalesce(version::text, '-'), coalesce(alias, '-')),
      hint = 'Register the model and version first (mlops.models / mlops.model_versions).';
  end if;
end
$$;
comment on function mlops._prediction_version(text, integer, text) is
  'Private: resolves model + version or alias (latest version when neither) to its id; 42704 when unknown.';

-- Resolves the (model, version, alias) triples of a batch at once (same rule and 42704 error as
-- _prediction_version): what a client needs to COPY rows straight into mlops.predictions.
create or replace function mlops._resolve_prediction_versions(models text[], versions integer[], aliases text[])
returns table (model text, version integer, alias text, version_id bigint, version_number integer, vector_dim integer)
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if pg_catalog.cardinality(models) is distinct from pg_catalog.cardinality(versions)
     or pg_catalog.cardinality(models) is distinct from pg_catalog.cardinality(aliases) then
    raise exception using errcode = '22023', message = 'invalid models, versions, aliases: arrays of one length expected';
  end if;
  for i in 1 .. coalesce(pg_catalog.cardinality(models), 0) loop
    model := models[i];
    version := versions[i];
    alias := aliases[i];
    select r.version_id, r.version_number, r.vector_dim into version_id, version_number, vector_dim
      from mlops._prediction_version(models[i], versions[i], aliases[i]) r;
    return next;
  end loop;
end
$$;
comment on function mlops._resolve_prediction_versions(text[], integer[], text[]) is
  'Private: resolves each (model, version, alias) of a batch to its version id, number and feature_vector dimension; '
  '42704 when one is unknown.';

-- Logs one prediction in one round trip; returns its id. Logging a request_id again keeps
-- the first row and returns its id (also under concurrent duplicates: the request key row
-- is the lock). Features are limited to 64 KiB. Security definer (static SQL only) so one
-- call does version lookup, partition check and both inserts without nested definer calls.
-- Two statements per call: the version lookup (with the partition check as a subquery), and
-- one insert that claims the request key and writes the row (no exception block, so no
-- subtransaction). The first row of a new partition makes it first.
create or replace function mlops.log_prediction(model text, request_id text default null, version integer default null,
                                                alias text default null, features jsonb default null,
                                                output jsonb default null, score float8 default null,
                                                label text default null, confidence float8 default null,
                                                latency_ms float8 default null, error text default null,
                                                unit_id text default null, experiment text default null,
                                                variant text default null, feature_vector vector default null,
                                                created_at timestamptz default null) returns bigint
language plpgsql volatile security definer set search_path from current
as $$
declare
  ver record;
  ts timestamptz := coalesce(log_prediction.created_at, pg_catalog.now());
  rid text := coalesce(log_prediction.request_id, pg_catalog.gen_random_uuid()::text);
  new_id bigint;
begin
  -- one condition in the usual (valid) case: each plpgsql expression costs a set-up per transaction
  if latency_ms < 0 or latency_ms = 'NaN'::float8 or latency_ms = 'Infinity'::float8 or not (confidence between 0 and 1)
     or score in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) or pg_catalog.pg_column_size(features) > 65536
     or pg_catalog.length(rid) not between 1 and 200 then
    if latency_ms is not null and (latency_ms < 0 or latency_ms = 'NaN'::float8 or latency_ms = 'Infinity'::float8) then
      raise exception using errcode = '22023',
        message = pg_catalog.format('invalid latency_ms %s: must be a finite number >= 0', latency_ms);
    end if;
    if confidence is not null and not (confidence between 0 and 1) then
      raise exception using errcode = '22023',
        message = pg_catalog.format('invalid confidence %s: must be in [0, 1]', confidence);
    end if;
    if score is not null and score in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) then
      raise exception using errcode = '22023', message = pg_catalog.format('invalid score %s: must be finite', score);
    end if;
    if features is not null and pg_catalog.pg_column_size(features) > 65536 then
      raise exception using errcode = '54000',
        message = pg_catalog.format('invalid features: %s bytes, the limit is 65536 (64 KiB)', pg_catalog.pg_column_size(features));
    end if;
    if pg_catalog.length(rid) not between 1 and 200 then
      raise exception using errcode = '22023', message = 'invalid request_id: must be 1 to 200 characters';
    end if;
  end if;
  -- resolution inlined (same rule as mlops._prediction_version): a nested call costs more than the insert.
  -- One simple statement per case, so each keeps one cheap cached plan (measured: faster than one
  -- statement with a CASE over the arguments, and than folding lookup and insert into one statement).
  if log_prediction.version is not null then
    select v.id as version_id, v.version as version_number,
           (v.signature ->> 'feature_vector_dim')::integer as vector_dim,
           exists (select from mlops.prediction_partitions p where p.lower_bound <= ts and p.upper_bound > ts) as has_part
      into ver
      from mlops.models m join mlops.model_versions v on v.model_id = m.id
     where m.name = log_prediction.model and v.version = log_prediction.version;
  elsif log_prediction.alias is not null then
    select v.id as version_id, v.version as version_number,
           (v.signature ->> 'feature_vector_dim')::integer as vector_dim,
           exists (select from mlops.prediction_partitions p where p.lower_bound <= ts and p.upper_bound > ts) as has_part
      into ver
      from mlops.models m join mlops.model_aliases a on a.model_id = m.id
      join mlops.model_versions v on v.id = a.version_id
     where m.name = log_prediction.model and a.alias = log_prediction.alias;
  else
    select v.id as version_id, v.version as version_number,
           (v.signature ->> 'feature_vector_dim')::integer as vector_dim,
           exists (select from mlops.prediction_partitions p where p.lower_bound <= ts and p.upper_bound > ts) as has_part
      into ver
      from mlops.models m join mlops.model_versions v on v.model_id = m.id
     where m.name = log_prediction.model
     order by v.version desc limit 1;
  end if;
  if ver.version_id is null then
    perform mlops._prediction_version(model, version, alias);  -- raises the 42704 error
  end if;
  if feature_vector is not null and ver.vector_dim is not null and vector_dims(feature_vector) <> ver.vector_dim then
    raise exception using errcode = '22000',
      message = pg_catalog.format('invalid feature_vector: dimension %s, model %s version %s expects %s',
                                  vector_dims(feature_vector), model, ver.version_number, ver.vector_dim);
  end if;
  if not ver.has_part then
    perform mlops._ensure_prediction_partition(ts);
  end if;
  -- the key insert is the lock: a concurrent duplicate waits for it, then does nothing
  with claimed as (
    insert into mlops.prediction_requests as r (request_id, prediction_id)
    values (rid, pg_catalog.nextval('mlops.predictions_id_seq'))
    on conflict on constraint prediction_requests_pkey do nothing
    returning r.prediction_id)
  insert into mlops.predictions as p (id, request_id, model, model_version, model_version_id, alias, experiment,
                                      variant, unit_id, features, feature_vector, output, score, label, confidence,
                                      latency_ms, error, created_at)
  select c.prediction_id, rid, log_prediction.model, ver.version_number, ver.version_id, log_prediction.alias,
         log_prediction.experiment, log_prediction.variant, log_prediction.unit_id, log_prediction.features,
         log_prediction.feature_vector, log_prediction.output, log_prediction.score, log_prediction.label,
         log_prediction.confidence, log_prediction.latency_ms, log_prediction.error, ts
    from claimed c
  returning p.id into new_id;
  if new_id is null then  -- logged before: the first row's id
    select r.prediction_id into new_id from mlops.prediction_requests r where r.request_id = rid;
  end if;
  return new_id;
end
$$;
comment on function mlops.log_prediction(text, text, integer, text, jsonb, jsonb, float8, text, float8, float8, text,
                                         text, text, text, vector, timestamptz) is
  'Logs one prediction (idempotent on request_id; a repeat returns the first row''s id). features <= 64 KiB, '
  'latency_ms finite and >= 0, confidence in [0, 1].';

-- Creates (or empties) a session temp table with the columns of a prediction batch. Temp, not
-- unlogged: private to the session, gone at its end, never shared user data. Its column id
-- takes the prediction id from the sequence as rows arrive (unless the client sends ids it took
-- from the sequence), so ingestion writes keys and rows from the same table without carrying ids
-- between statements. model_version_id is there so the client can COPY one CSV into either
-- mlops.predictions or this table; ingestion ignores it and resolves the version itself.
create or replace function mlops._prediction_staging(name text) returns regclass
language plpgsql volatile set search_path from current
as $$
declare
  staging regclass;
begin
  if name not in ('mlops_prediction_staging', 'mlops_prediction_batch') then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid staging table name %s', name);
  end if;
  staging := pg_catalog.to_regclass('pg_temp.' || name);
  if staging is not null and not exists (select from pg_catalog.pg_attribute a
                                          where a.attrelid = staging::oid and a.attname = 'model_version_id'
                                            and not a.attisdropped) then
    execute pg_catalog.format('drop table pg_temp.%I', name);  -- made by an older version in this session
    staging := null;
  end if;
  if staging is null then
    execute pg_catalog.format(
      'create temp table %I (request_id text collate "C", model text, version integer, alias text, experiment text, '
      'variant text, unit_id text, features jsonb, feature_vector vector, output jsonb, score float8, label text, '
      'confidence float8, latency_ms float8, error text, created_at timestamptz, '
      'id bigint not null default pg_catalog.nextval(%L), model_version_id bigint)', name, 'mlops.predictions_id_seq');
  else
    execute pg_catalog.format('truncate pg_temp.%I', name);
  end if;
  return pg_catalog.to_regclass('pg_temp.' || name);
end
$$;
comment on function mlops._prediction_staging(text) is
  'Private: creates or empties the session temp table pg_temp.<name> holding a batch of predictions to ingest.';

-- Set-based ingestion of a session temp table of predictions (log_predictions(jsonb) and the
-- COPY staging path). One grouped scan validates every row (nothing is written when one is bad)
-- and resolves each (model, version, alias) once; missing partitions are created; then:
--  * fast path (when a probe of the first 1000 keys finds none logged): two plain inserts from
--    the staging table, the request keys in key order first, then the rows (no ON CONFLICT, no
--    join). A key that exists, or repeats in the batch, raises unique_violation, which rolls the
--    attempt back (one subtransaction per batch, not per row) and takes
--  * the claiming path: keys are claimed with ON CONFLICT DO NOTHING (in key order, so
--    concurrent batches never deadlock) and only the rows whose key was claimed are inserted.
-- Either way a request_id is logged once, also under concurrent duplicates (the unique key
-- of mlops.prediction_requests decides).
-- rows: a JSON array of predictions (log_predictions), or null for the session's COPY staging
-- table. No SQL text comes in: an earlier signature took the recordset expression as text.
drop function if exists mlops._ingest_predictions(text, jsonb);
create or replace function mlops._ingest_predictions(rows jsonb) returns bigint
language plpgsql volatile set search_path from current set work_mem = '64MB' set jit = off
as $$
declare
  src text := case when rows is null then 'pg_temp.mlops_prediction_staging' else 'pg_temp.mlops_prediction_batch' end;
  g record;
  n bigint := 0;
  lo timestamptz;
  hi timestamptz;
  null_ids bigint := 0;
  bad_latency bigint := 0;
  bad_confidence bigint := 0;
  bad_score bigint := 0;
  bad_features bigint := 0;
  bad_model bigint := 0;
  bad_request bigint := 0;
  bad_time bigint := 0;
  gm text[] := '{}';
  gv integer[] := '{}';
  ga text[] := '{}';
  dmin integer[] := '{}';
  dmax integer[] := '{}';
  vid bigint[] := '{}';
  vnum integer[] := '{}';
  ver record;
  b timestamptz;
  step interval;
  version_cols text;
  version_join text;
  inserted bigint;
  seen boolean;
  insert_rows text;
begin
  if rows is not null then  -- a jsonb recordset: materialize it once into a temp table
    perform mlops._prediction_staging('mlops_prediction_batch');
    -- dynamic only because the temp table is made at run time; the statement text is fixed
    execute 'insert into pg_temp.mlops_prediction_batch select * from pg_catalog.jsonb_to_recordset($1) as x('
            'request_id text, model text, version integer, alias text, experiment text, variant text, unit_id text, '
            'features jsonb, feature_vector vector, output jsonb, score float8, label text, confidence float8, '
            'latency_ms float8, error text, created_at timestamptz)' using rows;
  elsif pg_catalog.to_regclass(src) is null then
    raise exception using errcode = '55000', message = 'no staging table in this session',
      hint = 'Call mlops.create_prediction_staging() and COPY into pg_temp.mlops_prediction_staging first.';
  end if;
  for g in execute pg_catalog.format($q$
    select s.model, s.version, s.alias, pg_catalog.count(*) as n,
           pg_catalog.min(coalesce(s.created_at, pg_catalog.now())) as lo,
           pg_catalog.max(coalesce(s.created_at, pg_catalog.now())) as hi,
           pg_catalog.count(*) filter (where s.request_id is null) as null_ids,
           pg_catalog.count(*) filter (where s.latency_ms < 0 or s.latency_ms in ('NaN', 'Infinity')) as bad_latency,
           pg_catalog.count(*) filter (where not s.confidence between 0 and 1) as bad_confidence,
           pg_catalog.count(*) filter (where s.score in ('NaN', 'Infinity', '-Infinity')) as bad_score,
           pg_catalog.count(*) filter (where pg_catalog.pg_column_size(s.features) > 65536) as bad_features,
           pg_catalog.count(*) filter (where pg_catalog.length(s.request_id) not between 1 and 200) as bad_request,
           pg_catalog.count(*) filter (where not pg_catalog.isfinite(s.created_at)) as bad_time,
           pg_catalog.min(vector_dims(s.feature_vector)) as dmin, pg_catalog.max(vector_dims(s.feature_vector)) as dmax
      from %s s group by 1, 2, 3$q$, src) loop
    n := n + g.n;
    lo := least(lo, g.lo);
    hi := greatest(hi, g.hi);
    null_ids := null_ids + g.null_ids;
    bad_latency := bad_latency + g.bad_latency;
    bad_confidence := bad_confidence + g.bad_confidence;
    bad_score := bad_score + g.bad_score;
    bad_features := bad_features + g.bad_features;
    bad_request := bad_request + g.bad_request;
    bad_time := bad_time + g.bad_time;
    if g.model is null then
      bad_model := bad_model + g.n;
    end if;
    gm := gm || g.model;
    gv := gv || g.version;
    ga := ga || g.alias;
    dmin := dmin || g.dmin;
    dmax := dmax || g.dmax;
  end loop;
  if bad_latency > 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid latency_ms in %s rows: must be a finite number >= 0', bad_latency);
  elsif bad_confidence > 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid confidence in %s rows: must be in [0, 1]', bad_confidence);
  elsif bad_score > 0 then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid score in %s rows: must be finite', bad_score);
  elsif bad_features > 0 then
    raise exception using errcode = '54000',
      message = pg_catalog.format('invalid features in %s rows: the limit is 65536 bytes (64 KiB)', bad_features);
  elsif bad_model > 0 then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid model in %s rows: must not be null', bad_model);
  elsif bad_request > 0 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid request_id in %s rows: must be 1 to 200 characters', bad_request);
  elsif bad_time > 0 then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid created_at in %s rows: must be finite', bad_time);
  end if;
  if n = 0 then
    return 0;
  end if;
  -- every (model, version, alias) must resolve; vectors must match the version's dimension
  for i in 1 .. pg_catalog.cardinality(gm) loop
    ver := mlops._prediction_version(gm[i], gv[i], ga[i]);
    if ver.vector_dim is not null and (dmin[i] <> ver.vector_dim or dmax[i] <> ver.vector_dim) then
      raise exception using errcode = '22000',
        message = pg_catalog.format('invalid feature_vector: dimension %s, model %s version %s expects %s',
                                    case when dmin[i] <> ver.vector_dim then dmin[i] else dmax[i] end,
                                    gm[i], ver.version_number, ver.vector_dim);
    end if;
    vid := vid || ver.version_id;
    vnum := vnum || ver.version_number;
  end loop;
  step := (mlops._prediction_settings()).partition_interval;
  if hi - lo <= step * 8 then
    b := lo;
    while b < hi + step loop
      if not exists (select from mlops.prediction_partitions p
                      where p.lower_bound <= least(b, hi) and p.upper_bound > least(b, hi)) then
        perform mlops._ensure_prediction_partition(least(b, hi));
      end if;
      b := b + step;
    end loop;
  else  -- sparse backfill: only the buckets that hold rows
    for b in execute pg_catalog.format($q$
      select pg_catalog.min(t) from (select coalesce(s.created_at, pg_catalog.now()) as t from %s s) x
       group by pg_catalog.date_bin($1, x.t, '2000-01-01 00:00+00')$q$, src) using step loop
      if not exists (select from mlops.prediction_partitions p where p.lower_bound <= b and p.upper_bound > b) then
        perform mlops._ensure_prediction_partition(b);
      end if;
    end loop;
  end if;
  if null_ids > 0 then  -- generated keys, fixed before the rows are read twice
    execute pg_catalog.format('update %s set request_id = pg_catalog.gen_random_uuid()::text where request_id is null',
                              src);
  end if;
  -- one (model, version, alias) group (the usual batch): constants, no join
  if pg_catalog.cardinality(gm) = 1 then
    version_cols := '$2[1], $1[1]';
    version_join := '';
  else
    version_cols := 'v.vnum, v.vid';
    version_join := 'join rows from (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),'
                    ' pg_catalog.unnest($1), pg_catalog.unnest($2)) as v(model, version, alias, vid, vnum)'
                    ' on v.model = s.model and coalesce(v.version, -1) = coalesce(s.version, -1)'
                    ' and coalesce(v.alias, '''') = coalesce(s.alias, '''')';
  end if;
  -- cheap probe of the first rows: a batch logged again goes straight to the claiming path
  execute pg_catalog.format('select exists (select from (select s.request_id from %s s limit 1000) s'
                            ' join mlops.prediction_requests r on r.request_id = s.request_id)', src) into seen;
  -- the rows insert of both paths: %1$s the rows (alias s), %2$s the version columns, %3$s their join
  insert_rows := $q$
    insert into mlops.predictions as p (id, request_id, model, model_version, model_version_id, alias, experiment,
                                        variant, unit_id, features, feature_vector, output, score, label,
                                        confidence, latency_ms, error, created_at)
    select s.id, s.request_id, s.model, %2$s, s.alias, s.experiment, s.variant, s.unit_id, s.features,
           s.feature_vector, s.output, s.score, s.label, s.confidence, s.latency_ms, s.error,
           coalesce(s.created_at, pg_catalog.now())
      from %1$s %3$s$q$;
  if not seen then
    begin
      execute pg_catalog.format('insert into mlops.prediction_requests (request_id, prediction_id)'
                                ' select s.request_id, s.id from %s s order by s.request_id collate "C"', src);
      execute pg_catalog.format(insert_rows, src || ' s', version_cols, version_join) using vid, vnum, gm, gv, ga;
      get diagnostics inserted = row_count;
    exception when unique_violation then  -- a key exists (maybe logged concurrently) or repeats in the batch
      seen := true;
    end;
  end if;
  if seen then
    execute pg_catalog.format($q$
      with claimed as (
        insert into mlops.prediction_requests as r (request_id, prediction_id)
        select s.request_id, s.id from %1$s s
         order by s.request_id collate "C"  -- concurrent batches claim keys in one order: no deadlock
        on conflict on constraint prediction_requests_pkey do nothing
        returning r.prediction_id),
      ins as (%2$s returning 1)
      select pg_catalog.count(*) from ins$q$, src,
      pg_catalog.format(insert_rows, 'claimed c join ' || src || ' s on s.id = c.prediction_id', version_cols,
                        version_join)) using vid, vnum, gm, gv, ga
      into inserted;
  end if;
  return inserted;
end
$$;
comment on function mlops._ingest_predictions(jsonb) is
  'Private: validates, partitions and inserts predictions from a JSON array (rows), or when rows is null from '
  'pg_temp.mlops_prediction_staging.';

-- Set-based logging of a JSON array of prediction objects (keys = log_prediction's arguments).
-- Returns how many rows were new (duplicates of logged request_ids are skipped).
create or replace function mlops.log_predictions(predictions jsonb) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
begin
  if predictions is null or pg_catalog.jsonb_typeof(predictions) <> 'array' then
    raise exception using errcode = '22023', message = 'invalid predictions: must be a JSON array of objects',
      hint = 'e.g. [{"model": "churn", "request_id": "r1", "score": 0.7, "latency_ms": 3.2}]';
  end if;
  if exists (select from pg_catalog.jsonb_array_elements(predictions) e where pg_catalog.jsonb_typeof(e) <> 'object') then
    raise exception using errcode = '22023', message = 'invalid predictions: every element must be a JSON object';
  end if;
  n := mlops._ingest_predictions(predictions);
  truncate pg_temp.mlops_prediction_batch;
  return n;
end
$$;
comment on function mlops.log_predictions(jsonb) is
  'Logs a JSON array of predictions in one set-based statement; returns the number of new rows (repeats skipped).';

-- Creates (or empties) this session's staging table for COPY; returns its name.
create or replace function mlops.create_prediction_staging() returns regclass
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  select mlops._prediction_staging('mlops_prediction_staging')
$$;
comment on function mlops.create_prediction_staging() is
  'Creates or empties the session''s temp table pg_temp.mlops_prediction_staging for COPY; then call log_staged_predictions().';

-- Moves the session's staging table into mlops.predictions (same checks and idempotency as log_predictions).
create or replace function mlops.log_staged_predictions() returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
begin
  n := mlops._ingest_predictions(null);  -- 55000 when the session has no staging table
  truncate pg_temp.mlops_prediction_staging;
  return n;
end
$$;
comment on function mlops.log_staged_predictions() is
  'Ingests and empties pg_temp.mlops_prediction_staging; returns the number of new predictions.';

-- Records ground truth for a request. Feedback may arrive before the prediction row: it is
-- kept as is and joins when the prediction is logged. A later call for the same request
-- replaces the earlier feedback. Returns true when the prediction is already logged.
create or replace function mlops.log_feedback(request_id text, actual jsonb default null, label text default null,
                                              value float8 default null, correct boolean default null,
                                              reward float8 default null) returns boolean
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
begin
  if request_id is null or pg_catalog.length(request_id) not between 1 and 200 then
    raise exception using errcode = '22023', message = 'invalid request_id: must be 1 to 200 characters';
  end if;
  if actual is null and label is null and value is null and correct is null and reward is null then
    raise exception using errcode = '22023',
      message = 'invalid feedback: give at least one of actual, label, value, correct, reward';
  end if;
  if value in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid value %s: must be finite', value);
  end if;
  if reward in ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid reward %s: must be finite', reward);
  end if;
  if actual is not null and pg_catalog.pg_column_size(actual) > 65536 then
    raise exception using errcode = '54000', message = 'invalid actual: larger than the 65536 byte (64 KiB) limit';
  end if;
  insert into mlops.prediction_feedback as f (request_id, actual, label, value, correct, reward)
  values (log_feedback.request_id, log_feedback.actual, log_feedback.label, log_feedback.value, log_feedback.correct,
          log_feedback.reward)
  on conflict on constraint prediction_feedback_pkey do update
     set actual = excluded.actual, label = excluded.label, value = excluded.value, correct = excluded.correct,
         reward = excluded.reward, updated_at = pg_catalog.now();
  return exists (select from mlops.prediction_requests r where r.request_id = log_feedback.request_id);
end
$$;
comment on function mlops.log_feedback(text, jsonb, text, float8, boolean, float8) is
  'Records (or replaces) ground truth for a request_id; kept even when the prediction is not logged yet. '
  'Returns whether the prediction is already logged.';
