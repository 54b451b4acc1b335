-- Model registry API: models, versions (gap-free numbers, sha256-checked artifacts, semver),
-- aliases with full history, stages derived from aliases, promotion policies, comparison.

-- Model id by name, or a clear P0002 error naming the argument.
create or replace function mlops._model_id(model text) returns bigint
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint;
begin
  select m.id into mid from mlops.models m where m.name = model;
  if mid is null then
    raise exception using errcode = 'P0002',
      message = pg_catalog.format('unknown model %s (argument model)', coalesce(pg_catalog.quote_literal(model), 'NULL')),
      hint = 'Register it with mlops.register_model(name => ...).';
  end if;
  return mid;
end
$$;
comment on function mlops._model_id(text) is 'Private: id of a registered model; raises P0002 naming the argument when unknown.';

-- Resolves "3", "v3", "latest", a semver label ("1.2.0") or an alias to model_versions.id.
-- Contract used by predictions and experiments.
create or replace function mlops._resolve_version(model text, alias_or_version text) returns bigint
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  vid bigint;
  ref text := pg_catalog.btrim(alias_or_version);
begin
  if ref is null or ref = '' then
    raise exception using errcode = '22023',
      message = 'alias_or_version must not be empty (argument alias_or_version)',
      hint = 'Give a version number (3), latest, a semver label (1.2.0) or an alias (production).';
  end if;
  if ref ~ '^v?[0-9]{1,9}$' then
    select v.id into vid from mlops.model_versions v
     where v.model_id = mid and v.version = pg_catalog.ltrim(ref, 'v')::integer;
  elsif ref = 'latest' then
    select v.id into vid from mlops.model_versions v where v.model_id = mid order by v.version desc limit 1;
  elsif ref ~ '^[0-9]+\.[0-9]+\.[0-9]+' then
    select v.id into vid from mlops.model_versions v where v.model_id = mid and v.semver = ref;
  else
    select a.version_id into vid from mlops.model_aliases a where a.model_id = mid and a.alias = ref;
  end if;
  if vid is null then
    raise exception using errcode = 'P0002',
      message = pg_catalog.format('model %L has no version or alias %L (argument alias_or_version)', model, ref),
      hint = 'See mlops.model_versions_bi for its versions and aliases.';
  end if;
  return vid;
end
$$;
comment on function mlops._resolve_version(text, text) is
  'Resolves a version number (3 or v3), latest, a semver label or an alias of a model to mlops.model_versions.id; '
  'raises P0002 for an unknown model, version or alias, 22023 for an empty reference.';

-- Registers a model name; with if_not_exists returns the existing id instead of failing.
create or replace function mlops.register_model(name text, task text default 'other', description text default '',
                                                tags jsonb default '{}', if_not_exists boolean default false)
returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint;
begin
  perform mlops._check_name(name, 'name');
  if task is null or task not in ('classification', 'regression', 'ranking', 'embedding', 'other') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid task %L (argument task)', task),
      hint = 'One of classification, regression, ranking, embedding, other.';
  end if;
  if tags is null or pg_catalog.jsonb_typeof(tags) <> 'object' then
    raise exception using errcode = '22023', message = 'tags must be a jsonb object (argument tags)';
  end if;
  select m.id into mid from mlops.models m where m.name = register_model.name;
  if mid is not null then
    if if_not_exists then
      return mid;
    end if;
    raise exception using errcode = '42710',
      message = pg_catalog.format('model %L is already registered (argument name)', name),
      hint = 'Pass if_not_exists => true to reuse it.';
  end if;
  insert into mlops.models (name, task, description, tags)
  values (register_model.name, register_model.task, coalesce(register_model.description, ''), register_model.tags)
  on conflict on constraint models_name_key do nothing
  returning id into mid;
  if mid is null then  -- lost a race with another register_model of the same name
    if if_not_exists then
      return mlops._model_id(name);
    end if;
    raise exception using errcode = '42710',
      message = pg_catalog.format('model %L is already registered (argument name)', name);
  end if;
  return mid;
end
$$;
comment on function mlops.register_model(text, text, text, jsonb, boolean) is
  'Registers a model: name (^[a-z][a-z0-9_]*$), task (classification|regression|ranking|embedding|other), description, tags; returns its id.';

-- Number of input features a signature declares ({"inputs": [names]} or {"n_features": k}), else null.
create or replace function mlops._signature_width(signature jsonb) returns integer
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select case when pg_catalog.jsonb_typeof(signature -> 'inputs') = 'array' then pg_catalog.jsonb_array_length(signature -> 'inputs')
              when pg_catalog.jsonb_typeof(signature -> 'n_features') = 'number' then (signature ->> 'n_features')::integer end
$$;
comment on function mlops._signature_width(jsonb) is 'Private: feature count declared by a version signature (inputs array or n_features), null if none.';

-- Validates a linear-flavor artifact: {"coefficients": [numbers], "intercept": number, "link": "identity"|"logistic"}.
create or replace function mlops._check_linear(artifact jsonb) returns void
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  if pg_catalog.jsonb_typeof(artifact) <> 'object'
     or pg_catalog.jsonb_typeof(artifact -> 'coefficients') is distinct from 'array'
     or pg_catalog.jsonb_array_length(artifact -> 'coefficients') = 0
     or exists (select from pg_catalog.jsonb_array_elements(artifact -> 'coefficients') e
                 where pg_catalog.jsonb_typeof(e) <> 'number')
     or (artifact ? 'intercept' and pg_catalog.jsonb_typeof(artifact -> 'intercept') <> 'number')
     or coalesce(artifact ->> 'link', 'identity') not in ('identity', 'logistic') then
    raise exception using errcode = '22023',
      message = 'linear artifact must be JSON {"coefficients": [numbers, ...], "intercept": number, "link": "identity"|"logistic"} (argument artifact)';
  end if;
end
$$;
comment on function mlops._check_linear(jsonb) is 'Private: raises 22023 unless the jsonb is a valid linear-flavor artifact.';

-- Creates the next version of a model. The number comes from models.next_version under the
-- model's row lock, in the same transaction as the insert: gap-free under any concurrency.
create or replace function mlops.create_model_version(
  model text, artifact bytea default null, artifact_uri text default null, flavor text default 'custom',
  metrics jsonb default '{}', params jsonb default '{}', signature jsonb default '{}',
  training_set text default null, training_job bigint default null, tags jsonb default '{}',
  sha256 text default null, semver text default null) returns integer
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  digest text;
  linear jsonb;
  width integer;
  vnum integer;
  label text := semver;
  prev integer[];
begin
  if artifact is null and artifact_uri is null then
    raise exception using errcode = '22023', message = 'give artifact (bytea) or artifact_uri (argument artifact)';
  end if;
  if flavor is null or flavor not in ('sklearn', 'onnx', 'linear', 'custom', 'sentence_transformers') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid flavor %L (argument flavor)', flavor),
      hint = 'One of sklearn, onnx, linear, custom, sentence_transformers.';
  end if;
  if metrics is null or pg_catalog.jsonb_typeof(metrics) <> 'object'
     or exists (select from pg_catalog.jsonb_each(metrics) e where pg_catalog.jsonb_typeof(e.value) <> 'number') then
    raise exception using errcode = '22023', message = 'metrics must be a jsonb object of numbers (argument metrics)';
  end if;
  if params is null or pg_catalog.jsonb_typeof(params) <> 'object' then
    raise exception using errcode = '22023', message = 'params must be a jsonb object (argument params)';
  end if;
  if signature is null or pg_catalog.jsonb_typeof(signature) <> 'object' then
    raise exception using errcode = '22023', message = 'signature must be a jsonb object (argument signature)';
  end if;
  if tags is null or pg_catalog.jsonb_typeof(tags) <> 'object' then
    raise exception using errcode = '22023', message = 'tags must be a jsonb object (argument tags)';
  end if;
  if sha256 is not null and sha256 !~ '^[0-9a-f]{64}$' then
    raise exception using errcode = '22023', message = 'sha256 must be 64 lowercase hex digits (argument sha256)';
  end if;
  if artifact is not null then
    digest := pg_catalog.encode(pg_catalog.sha256(artifact), 'hex');
    if sha256 is not null and sha256 <> digest then
      raise exception using errcode = '22023',
        message = pg_catalog.format('artifact sha256 mismatch: computed %s, given %s (argument sha256)', digest, sha256),
        hint = 'The artifact was corrupted in transit or the checksum belongs to another file.';
    end if;
  else
    if sha256 is null then
      raise exception using errcode = '22023', message = 'an artifact_uri needs its sha256 (argument sha256)';
    end if;
    digest := sha256;
  end if;
  width := mlops._signature_width(signature);
  if flavor = 'linear' then
    if artifact is null then
      raise exception using errcode = '22023', message = 'the linear flavor stores its coefficients in the database (argument artifact)';
    end if;
    begin
      linear := pg_catalog.convert_from(artifact, 'UTF8')::jsonb;
    exception when others then
      raise exception using errcode = '22023', message = 'linear artifact is not UTF-8 JSON (argument artifact)';
    end;
    perform mlops._check_linear(linear);
    if width is not null and width <> pg_catalog.jsonb_array_length(linear -> 'coefficients') then
      raise exception using errcode = '22023',
        message = pg_catalog.format('signature declares %s features but the artifact has %s coefficients (argument signature)',
                                    width, pg_catalog.jsonb_array_length(linear -> 'coefficients'));
    end if;
  elsif flavor = 'sklearn' and artifact is not null
        and (pg_catalog.length(artifact) < 2 or pg_catalog.get_byte(artifact, 0) <> 128) then
    raise exception using errcode = '22023',
      message = 'sklearn artifact is not a pickle (protocol 2 or later) (argument artifact)',
      hint = 'Serialize the estimator with pickle.dumps(estimator) or use client.registry.log_version().';
  end if;
  if training_job is not null and not exists (select from mlops.training_job_queue j where j.id = training_job) then
    raise exception using errcode = 'P0002', message = pg_catalog.format('unknown training job %s (argument training_job)', training_job);
  end if;

  update mlops.models m set next_version = m.next_version + 1 where m.id = mid returning m.next_version - 1 into vnum;

  if label in ('major', 'minor', 'patch') then
    select coalesce((select pg_catalog.regexp_match(v.semver, '^([0-9]+)\.([0-9]+)\.([0-9]+)')::integer[]
                       from mlops.model_versions v where v.model_id = mid and v.semver ~ '^[0-9]+\.[0-9]+\.[0-9]+'
                      order by (pg_catalog.regexp_match(v.semver, '^([0-9]+)\.([0-9]+)\.([0-9]+)'))::integer[] desc limit 1),
                    array[0, 0, 0]) into prev;
    label := case label when 'major' then pg_catalog.format('%s.0.0', prev[1] + 1)
                        when 'minor' then pg_catalog.format('%s.%s.0', prev[1], prev[2] + 1)
                        else pg_catalog.format('%s.%s.%s', prev[1], prev[2], prev[3] + 1) end;
  elsif label is not null and label !~ '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid semver %L (argument semver)', label),
      hint = 'MAJOR.MINOR.PATCH like 1.4.0, or major / minor / patch to bump the highest label of this model.';
  end if;
  if label is not null and exists (select from mlops.model_versions v where v.model_id = mid and v.semver = label) then
    raise exception using errcode = '23505',
      message = pg_catalog.format('model %L already has a version labelled %s (argument semver)', model, label);
  end if;

  insert into mlops.model_versions (model_id, version, semver, flavor, artifact, artifact_uri, artifact_sha256,
                                    metrics, params, signature, training_set, training_job, tags)
  values (mid, vnum, label, flavor, artifact, artifact_uri, digest,
          metrics, params, signature, training_set, training_job, tags);
  return vnum;
end
$$;
comment on function mlops.create_model_version(text, bytea, text, text, jsonb, jsonb, jsonb, text, bigint, jsonb, text, text) is
  'Creates the next version of a model (gap-free per-model number, returned) from an artifact (stored, sha256 computed '
  'and checked against sha256 when given) or an artifact_uri plus its sha256; flavor sklearn|onnx|linear|custom; '
  'semver is a label (1.2.0) or major|minor|patch to bump the highest label.';

-- Derives each version's stage from aliases (the documented rule):
--   production  when alias production points to it;
--   staging     else when alias staging points to it;
--   archived    else when it ever held production or staging;
--   registered  otherwise; failed is sticky (set by mlops.set_version_status).
create or replace function mlops._sync_stages(model_id bigint) returns void
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  update mlops.model_versions v
     set status = s.status
    from (select x.id,
                 case when x.status = 'failed' then 'failed'
                      when exists (select from mlops.model_aliases a where a.version_id = x.id and a.alias = 'production') then 'production'
                      when exists (select from mlops.model_aliases a where a.version_id = x.id and a.alias = 'staging') then 'staging'
                      when exists (select from mlops.alias_events e where e.to_version_id = x.id
                                      and e.alias in ('staging', 'production')) then 'archived'
                      else 'registered' end as status
            from mlops.model_versions x where x.model_id = _sync_stages.model_id) s
   where v.id = s.id and v.status is distinct from s.status
$$;
comment on function mlops._sync_stages(bigint) is
  'Private: keeps model_versions.status consistent with aliases: production if alias production points to the version, '
  'else staging if alias staging does, else archived if it ever held one of them, else registered; failed is sticky.';

-- Hours a version has spent (in total) under an alias of its model, from the alias history.
create or replace function mlops._hours_under_alias(model_id bigint, alias text, version_id bigint) returns float8
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select coalesce(pg_catalog.sum(extract(epoch from h.until - h.changed_at)) / 3600.0, 0)::float8
    from (select e.to_version_id, e.changed_at,
                 pg_catalog.lead(e.changed_at, 1, pg_catalog.clock_timestamp()) over (order by e.id) as until
            from mlops.alias_events e where e.model_id = _hours_under_alias.model_id and e.alias = _hours_under_alias.alias) h
   where h.to_version_id = _hours_under_alias.version_id
$$;
comment on function mlops._hours_under_alias(bigint, text, bigint) is 'Private: total hours a version held an alias, from mlops.alias_events.';

-- Calls an optional check function fn(model text, version integer) returns boolean by name, when it exists.
create or replace function mlops._call_check(fn text, model text, version integer) returns boolean
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  proc regprocedure := pg_catalog.to_regprocedure(fn || '(text,integer)');
  ok boolean;
begin
  if proc is null then
    return null;
  end if;
  execute pg_catalog.format('select %s($1, $2)', proc::oid::regproc) into ok using model, version;
  return ok;
end
$$;
comment on function mlops._call_check(text, text, integer) is
  'Private: runs the check function fn(model text, version integer) returns boolean if it exists, else returns null.';

-- Evaluates the promotion policy of (model, alias) for a version: a jsonb array of failed rules
-- ({"rule": n, "kind": ..., "message": ...}); empty when the move is allowed.
create or replace function mlops._policy_failures(model_id bigint, alias text, version_id bigint) returns jsonb
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  rules jsonb;
  r jsonb;
  n integer := 0;
  failed jsonb := '[]';
  v record;
  mname text;
  val float8;
  ok boolean;
  fn text;
begin
  select p.rules into rules from mlops.promotion_policies p
   where p.model_id = _policy_failures.model_id and p.alias = _policy_failures.alias;
  if rules is null then
    return failed;
  end if;
  select x.version, x.metrics into v from mlops.model_versions x where x.id = version_id;
  select m.name into mname from mlops.models m where m.id = model_id;
  for r in select * from pg_catalog.jsonb_array_elements(rules) loop
    n := n + 1;
    case r ->> 'kind'
    when 'metric' then
      val := (v.metrics ->> (r ->> 'metric'))::float8;
      if val is null then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'metric', 'message',
                   pg_catalog.format('metric %s is missing', r ->> 'metric'));
      elsif r ? 'min' and val < (r ->> 'min')::float8 then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'metric', 'message',
                   pg_catalog.format('metric %s = %s is below min %s', r ->> 'metric', val, r ->> 'min'));
      elsif r ? 'max' and val > (r ->> 'max')::float8 then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'metric', 'message',
                   pg_catalog.format('metric %s = %s is above max %s', r ->> 'metric', val, r ->> 'max'));
      end if;
    when 'min_time_under_alias' then
      val := mlops._hours_under_alias(model_id, r ->> 'alias', version_id);
      if val < (r ->> 'hours')::float8 then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'min_time_under_alias', 'message',
                   pg_catalog.format('version spent %s h under alias %s, needs %s h',
                                     pg_catalog.round(val::numeric, 2), r ->> 'alias', r ->> 'hours'));
      end if;
    when 'max_p95_latency_ms' then
      if pg_catalog.to_regprocedure('mlops.model_version_latency_p95(text,integer,timestamptz)') is null then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'max_p95_latency_ms', 'message',
                   'no prediction log to measure latency (mlops.model_version_latency_p95 is not installed)');
      else
        execute 'select mlops.model_version_latency_p95($1, $2, $3)' into val
          using mname, v.version, pg_catalog.now() - pg_catalog.make_interval(hours => coalesce((r ->> 'window_hours')::integer, 24));
        if val is null or val > (r ->> 'value')::float8 then
          failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'max_p95_latency_ms', 'message',
                     pg_catalog.format('p95 latency %s ms exceeds %s ms', coalesce(pg_catalog.round(val::numeric, 3)::text, 'unknown (no predictions logged)'),
                                       r ->> 'value'));
        end if;
      end if;
    when 'no_open_drift_alert' then
      if exists (select from mlops.alerts a where a.source = 'drift' and a.resolved_at is null
                                              and a.details ->> 'model' = mname) then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', 'no_open_drift_alert', 'message',
                   pg_catalog.format('model %s has an open drift alert', mname));
      end if;
    when 'experiment_passed', 'check' then
      fn := coalesce(r ->> 'function', 'mlops.experiment_passed');
      ok := mlops._call_check(fn, mname, v.version);
      if ok is null or not ok then
        failed := failed || pg_catalog.jsonb_build_object('rule', n, 'kind', r ->> 'kind', 'message',
                   case when ok is null then pg_catalog.format('check %s(model, version) is not installed or returned null', fn)
                        else pg_catalog.format('check %s(model, version) returned false', fn) end);
      end if;
    end case;
  end loop;
  return failed;
end
$$;
comment on function mlops._policy_failures(bigint, text, bigint) is
  'Private: failed rules of the promotion policy of (model, alias) for a version, as a jsonb array (empty = allowed).';

-- Validates a rules array; raises 22023 naming the bad rule.
create or replace function mlops._check_rules(rules jsonb) returns void
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  r jsonb;
  n integer := 0;
  bad text;
begin
  if rules is null or pg_catalog.jsonb_typeof(rules) <> 'array' then
    raise exception using errcode = '22023', message = 'rules must be a jsonb array of rule objects (argument rules)';
  end if;
  for r in select * from pg_catalog.jsonb_array_elements(rules) loop
    n := n + 1;
    bad := case
      when pg_catalog.jsonb_typeof(r) <> 'object' then 'is not an object'
      when r ->> 'kind' = 'metric' then
        case when pg_catalog.jsonb_typeof(r -> 'metric') is distinct from 'string' then 'needs "metric": name'
             when not (r ? 'min' or r ? 'max') then 'needs "min" and/or "max"'
             when (r ? 'min' and pg_catalog.jsonb_typeof(r -> 'min') <> 'number')
               or (r ? 'max' and pg_catalog.jsonb_typeof(r -> 'max') <> 'number') then 'min/max must be numbers' end
      when r ->> 'kind' = 'min_time_under_alias' then
        case when pg_catalog.jsonb_typeof(r -> 'alias') is distinct from 'string' then 'needs "alias": name'
             when pg_catalog.jsonb_typeof(r -> 'hours') is distinct from 'number' or (r ->> 'hours')::float8 < 0 then 'needs "hours" >= 0' end
      when r ->> 'kind' = 'max_p95_latency_ms' then
        case when pg_catalog.jsonb_typeof(r -> 'value') is distinct from 'number' or (r ->> 'value')::float8 <= 0 then 'needs "value" > 0 (milliseconds)'
             when r ? 'window_hours' and (pg_catalog.jsonb_typeof(r -> 'window_hours') <> 'number' or (r ->> 'window_hours')::float8 <= 0) then 'window_hours must be > 0' end
      when r ->> 'kind' = 'no_open_drift_alert' then null
      when r ->> 'kind' = 'experiment_passed' then
        case when r ? 'function' and pg_catalog.jsonb_typeof(r -> 'function') <> 'string' then '"function" must be a name' end
      when r ->> 'kind' = 'check' then
        case when pg_catalog.jsonb_typeof(r -> 'function') is distinct from 'string' then 'needs "function": schema.name' end
      else pg_catalog.format('has unknown kind %s (metric, min_time_under_alias, max_p95_latency_ms, no_open_drift_alert, experiment_passed, check)',
                             coalesce(r ->> 'kind', 'NULL')) end;
    if bad is not null then
      raise exception using errcode = '22023', message = pg_catalog.format('rule %s %s (argument rules)', n, bad);
    end if;
  end loop;
end
$$;
comment on function mlops._check_rules(jsonb) is 'Private: validates promotion-policy rules, raising 22023 naming the rule.';

-- Sets (or with rules => '[]' clears) the promotion policy of an alias of a model.
create or replace function mlops.set_promotion_policy(model text, alias text, rules jsonb) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
begin
  perform mlops._check_name(alias, 'alias');
  perform mlops._check_rules(rules);
  if pg_catalog.jsonb_array_length(rules) = 0 then
    delete from mlops.promotion_policies p where p.model_id = mid and p.alias = set_promotion_policy.alias;
    return;
  end if;
  insert into mlops.promotion_policies (model_id, alias, rules) values (mid, alias, rules)
  on conflict on constraint promotion_policies_pkey do update set rules = excluded.rules, updated_at = pg_catalog.now(), updated_by = current_user;
end
$$;
comment on function mlops.set_promotion_policy(text, text, jsonb) is
  'Sets the promotion policy checked by set_alias for (model, alias): a jsonb array of rules, each one of '
  '{"kind":"metric","metric":m,"min":x,"max":y}, {"kind":"min_time_under_alias","alias":"staging","hours":24}, '
  '{"kind":"max_p95_latency_ms","value":50,"window_hours":24}, {"kind":"no_open_drift_alert"}, '
  '{"kind":"experiment_passed","function":"mlops.experiment_passed"}, {"kind":"check","function":"schema.fn"} '
  '(fn(model text, version integer) returns boolean). Missing latency data or check functions fail the rule. An empty array clears the policy.';

-- The one writer of aliases: moves (or deletes, to_version_id null) an alias, appends history,
-- re-derives stages and NOTIFYs mlops_registry. Caller holds the model row lock.
create or replace function mlops._move_alias(model_id bigint, alias text, to_version_id bigint, action text,
                                             reason text, forced boolean, failed_rules jsonb) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  old_id bigint;
  event_id bigint;
begin
  select a.version_id into old_id from mlops.model_aliases a
   where a.model_id = _move_alias.model_id and a.alias = _move_alias.alias;
  if to_version_id is null then
    delete from mlops.model_aliases a where a.model_id = _move_alias.model_id and a.alias = _move_alias.alias;
  else
    insert into mlops.model_aliases (model_id, alias, version_id) values (model_id, alias, to_version_id)
    on conflict on constraint model_aliases_pkey do update
      set version_id = excluded.version_id, updated_at = pg_catalog.now(), updated_by = current_user;
  end if;
  insert into mlops.alias_events (model_id, alias, action, from_version_id, to_version_id, reason, forced, failed_rules)
  values (model_id, alias, action, old_id, to_version_id, reason, forced, coalesce(failed_rules, '[]'))
  returning id into event_id;
  perform mlops._sync_stages(model_id);
  perform pg_catalog.pg_notify('mlops_registry', pg_catalog.jsonb_build_object(
    'event', event_id, 'action', action, 'model', (select m.name from mlops.models m where m.id = _move_alias.model_id),
    'alias', alias,
    'from', (select v.version from mlops.model_versions v where v.id = old_id),
    'to', (select v.version from mlops.model_versions v where v.id = to_version_id),
    'forced', forced)::text);
  return event_id;
end
$$;
comment on function mlops._move_alias(bigint, text, bigint, text, text, boolean, jsonb) is
  'Private: writes an alias move, its history row, the derived stages and the mlops_registry notification.';

-- Points an alias at a version, after checking the alias's promotion policy. force => true
-- (with a reason) overrides failed rules; the override and the failed rules are recorded.
create or replace function mlops.set_alias(model text, alias text, version integer, reason text default null,
                                           force boolean default false) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  vid bigint;
  vstatus text;
  current_id bigint;
  failures jsonb;
begin
  perform mlops._check_name(alias, 'alias');
  if alias in ('latest') then
    raise exception using errcode = '22023', message = 'alias latest is reserved (argument alias)';
  end if;
  if version is null then
    raise exception using errcode = '22023', message = 'version must not be null (argument version)';
  end if;
  if force and coalesce(pg_catalog.btrim(reason), '') = '' then
    raise exception using errcode = '22023', message = 'force => true needs a reason (argument reason)',
      hint = 'The reason is recorded in mlops.alias_history.';
  end if;
  perform from mlops.models m where m.id = mid for update;  -- serializes alias moves of this model
  select v.id, v.status into vid, vstatus from mlops.model_versions v where v.model_id = mid and v.version = set_alias.version;
  if vid is null then
    raise exception using errcode = 'P0002',
      message = pg_catalog.format('model %L has no version %s (argument version)', model, version);
  end if;
  if vstatus = 'failed' then
    raise exception using errcode = '55000',
      message = pg_catalog.format('version %s of model %L is marked failed and cannot get an alias (argument version)', version, model);
  end if;
  select a.version_id into current_id from mlops.model_aliases a where a.model_id = mid and a.alias = set_alias.alias;
  if current_id = vid then
    return null;  -- already there: nothing to record
  end if;
  failures := mlops._policy_failures(mid, alias, vid);
  if pg_catalog.jsonb_array_length(failures) > 0 and not coalesce(force, false) then
    raise exception using errcode = '55000',
      message = pg_catalog.format('promotion policy of %s/%s refuses version %s: %s', model, alias, version,
                  (select pg_catalog.string_agg(pg_catalog.format('rule %s (%s): %s', f ->> 'rule', f ->> 'kind', f ->> 'message'), '; ')
                     from pg_catalog.jsonb_array_elements(failures) f)),
      hint = 'Fix the version or pass force => true with a reason (recorded in mlops.alias_history).';
  end if;
  return mlops._move_alias(mid, alias, vid, 'set', reason, coalesce(force, false) and pg_catalog.jsonb_array_length(failures) > 0, failures);
end
$$;
comment on function mlops.set_alias(text, text, integer, text, boolean) is
  'Points alias of model at version (one version per alias: primary key), checking the alias''s promotion policy; '
  'raises 55000 listing each failed rule unless force => true with a reason; records history, re-derives stages '
  '(production/staging aliases) and NOTIFYs mlops_registry. Returns the history event id (null when nothing moved).';

-- Removes an alias (recorded in history).
create or replace function mlops.delete_alias(model text, alias text, reason text default null) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
begin
  perform from mlops.models m where m.id = mid for update;
  if not exists (select from mlops.model_aliases a where a.model_id = mid and a.alias = delete_alias.alias) then
    raise exception using errcode = 'P0002',
      message = pg_catalog.format('model %L has no alias %L (argument alias)', model, alias);
  end if;
  return mlops._move_alias(mid, alias, null, 'delete', reason, false, '[]');
end
$$;
comment on function mlops.delete_alias(text, text, text) is 'Removes an alias of a model; the removal is recorded in mlops.alias_history.';

-- Moves an alias back to the version it pointed to before its latest move (repeatable:
-- each rollback undoes one more set/delete). Policies are not checked: rollback is the escape hatch.
create or replace function mlops.rollback(model text, alias text, reason text default null) returns integer
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  stack bigint[] := '{}';
  e record;
  target bigint;
  tstatus text;
begin
  perform mlops._check_name(alias, 'alias');
  perform from mlops.models m where m.id = mid for update;
  for e in select x.action, x.from_version_id from mlops.alias_events x
            where x.model_id = mid and x.alias = rollback.alias order by x.id loop
    if e.action = 'rollback' then
      stack := stack[1:pg_catalog.cardinality(stack) - 1];
    elsif e.from_version_id is not null then
      stack := stack || e.from_version_id;
    end if;
  end loop;
  if pg_catalog.cardinality(stack) = 0 then
    raise exception using errcode = '55000',
      message = pg_catalog.format('alias %L of model %L has no previous version to roll back to (argument alias)', alias, model);
  end if;
  target := stack[pg_catalog.cardinality(stack)];
  select v.status into tstatus from mlops.model_versions v where v.id = target;
  if tstatus = 'failed' then
    raise exception using errcode = '55000',
      message = pg_catalog.format('the previous version of %s/%s is marked failed (argument alias)', model, alias);
  end if;
  perform mlops._move_alias(mid, alias, target, 'rollback', reason, false, '[]');
  return (select v.version from mlops.model_versions v where v.id = target);
end
$$;
comment on function mlops.rollback(text, text, text) is
  'Moves an alias back to its previous version in one call (each further rollback goes one step further back); '
  'recorded in mlops.alias_history; returns the version number now under the alias.';

-- Marks a version failed (it can then never get an alias) or clears the mark.
create or replace function mlops.set_version_status(model text, version integer, status text) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  vid bigint;
begin
  if status is null or status not in ('failed', 'registered') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid status %L (argument status)', status),
      hint = 'Only failed (or registered, to clear it) is set by hand; other stages follow the staging/production aliases.';
  end if;
  perform from mlops.models m where m.id = mid for update;
  select v.id into vid from mlops.model_versions v where v.model_id = mid and v.version = set_version_status.version;
  if vid is null then
    raise exception using errcode = 'P0002', message = pg_catalog.format('model %L has no version %s (argument version)', model, version);
  end if;
  if status = 'failed' and exists (select from mlops.model_aliases a where a.version_id = vid) then
    raise exception using errcode = '55000',
      message = pg_catalog.format('version %s of %L holds an alias; move the alias first (argument version)', version, model);
  end if;
  update mlops.model_versions v set status = case when set_version_status.status = 'failed' then 'failed' else 'registered' end
   where v.id = vid;
  perform mlops._sync_stages(mid);
end
$$;
comment on function mlops.set_version_status(text, integer, text) is
  'Marks a version failed (refused while it holds an alias; failed versions can never be promoted) or registered to clear the mark.';

-- One version with its aliases.
create or replace function mlops.get_version(model text, alias_or_version text)
returns table (id bigint, model_name text, version integer, semver text, status text, flavor text,
               artifact_sha256 text, artifact_uri text, metrics jsonb, params jsonb, signature jsonb,
               training_set text, training_job bigint, tags jsonb, aliases text[], created_at timestamptz, created_by text)
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select v.id, m.name, v.version, v.semver, v.status, v.flavor, v.artifact_sha256, v.artifact_uri, v.metrics,
         v.params, v.signature, v.training_set, v.training_job, v.tags,
         coalesce((select pg_catalog.array_agg(a.alias order by a.alias) from mlops.model_aliases a where a.version_id = v.id), '{}'),
         v.created_at, v.created_by
    from mlops.model_versions v join mlops.models m on m.id = v.model_id
   where v.id = mlops._resolve_version(model, alias_or_version)
$$;
comment on function mlops.get_version(text, text) is
  'The version a number / latest / semver / alias resolves to, with metrics, params, lineage and its aliases.';

-- Metric deltas, params diff and lineage diff between two versions of a model.
create or replace function mlops.compare_versions(model text, version_1 integer, version_2 integer)
returns table (section text, key text, value_1 text, value_2 text, delta float8)
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  with a as (select * from mlops.model_versions v where v.id = mlops._resolve_version(model, version_1::text)),
       b as (select * from mlops.model_versions v where v.id = mlops._resolve_version(model, version_2::text))
  select 'metric', k, a.metrics ->> k, b.metrics ->> k, (b.metrics ->> k)::float8 - (a.metrics ->> k)::float8
    from a, b, (select pg_catalog.jsonb_object_keys(a.metrics) from a
                union select pg_catalog.jsonb_object_keys(b.metrics) from b) keys(k)
  union all
  select 'param', k, a.params ->> k, b.params ->> k, null
    from a, b, (select pg_catalog.jsonb_object_keys(a.params) from a
                union select pg_catalog.jsonb_object_keys(b.params) from b) keys(k)
   where (a.params -> k) is distinct from (b.params -> k)
  union all
  select 'lineage', l.k, l.v1, l.v2, null
    from a, b, lateral (values ('flavor', a.flavor, b.flavor), ('training_set', a.training_set, b.training_set),
                               ('training_job', a.training_job::text, b.training_job::text),
                               ('artifact_sha256', a.artifact_sha256, b.artifact_sha256),
                               ('semver', a.semver, b.semver), ('created_at', a.created_at::text, b.created_at::text),
                               ('created_by', a.created_by, b.created_by)) l(k, v1, v2)
  order by 1, 2
$$;
comment on function mlops.compare_versions(text, integer, integer) is
  'Compares two versions: every metric (delta = version_2 - version_1), params that differ, and lineage (flavor, '
  'training set, training job, sha256, semver, creation).';

-- Stage transitions for users who think in stages: staging / production move the alias of the
-- same name (policy-checked), archived removes those aliases from the version, failed marks it.
create or replace function mlops.transition_stage(model text, version integer, stage text, reason text default null,
                                                  force boolean default false) returns text
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint := mlops._model_id(model);
  a record;
begin
  if stage is null or stage not in ('staging', 'production', 'archived', 'failed', 'registered') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid stage %L (argument stage)', stage),
      hint = 'One of staging, production, archived, failed, registered.';
  end if;
  if stage in ('staging', 'production') then
    perform mlops.set_alias(model, stage, version, reason, force);
  elsif stage = 'archived' then
    perform mlops._resolve_version(model, version::text);
    for a in select x.alias from mlops.model_aliases x join mlops.model_versions v on v.id = x.version_id
              where x.model_id = mid and v.version = transition_stage.version and x.alias in ('staging', 'production') loop
      perform mlops.delete_alias(model, a.alias, coalesce(reason, 'archived'));
    end loop;
  else
    perform mlops.set_version_status(model, version, stage);
  end if;
  return (select v.status from mlops.model_versions v where v.model_id = mid and v.version = transition_stage.version);
end
$$;
comment on function mlops.transition_stage(text, integer, text, text, boolean) is
  'Stage view of aliases: staging / production call set_alias with the alias of that name (policy-checked); archived '
  'deletes the staging/production aliases pointing to the version (it then shows archived once it held one, registered '
  'otherwise); failed / registered call set_version_status. Returns the resulting status.';
