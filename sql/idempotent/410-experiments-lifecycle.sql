-- Experiments: creation and validation, status transitions, traffic changes, sticky
-- assignment (single and set-based batch) and routing to model versions.

-- Experiment row by name, or 42704 naming the argument.
create or replace function mlops._experiment(name text, argument text default 'experiment')
returns mlops.experiments
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments;
begin
  select * into e from mlops.experiments x where x.name = _experiment.name;
  if not found then
    raise exception using errcode = '42704',
      message = pg_catalog.format('experiment %s does not exist (argument %s)',
                                  coalesce(pg_catalog.quote_literal(name), 'NULL'), argument),
      hint = 'See mlops.experiments_bi for existing experiments.';
  end if;
  return e;
end
$$;
comment on function mlops._experiment(text, text) is 'Private: the experiment row of a name; raises 42704 naming the argument.';

-- model_versions.id a variant serves (alias or version of the experiment's model), null without a model.
create or replace function mlops._variant_version_id(experiment_id bigint, variant integer) returns bigint
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  model text;
  ref text;
begin
  select m.name, coalesce(v.alias, v.version::text) into model, ref
    from mlops.experiment_variants v join mlops.experiments e on e.id = v.experiment_id
    join mlops.models m on m.id = e.model_id
   where v.experiment_id = _variant_version_id.experiment_id and v.position = _variant_version_id.variant;
  if model is null then
    return null;
  end if;
  return mlops._resolve_version(model, ref);
end
$$;
comment on function mlops._variant_version_id(bigint, integer) is
  'Private: mlops.model_versions.id served by a variant (its alias resolved now), null for experiments without a model.';

-- Validates a variants array and returns it normalized: names checked, weights as fractions
-- summing to 1 (percentages summing to 100 are accepted), exactly one alias or version each.
create or replace function mlops._check_variants(variants jsonb, model_id bigint) returns jsonb
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  v jsonb;
  total numeric := 0;
  scale numeric := 1;
  out jsonb := '[]';
  w numeric;
  model text := (select m.name from mlops.models m where m.id = model_id);
begin
  if variants is null or pg_catalog.jsonb_typeof(variants) <> 'array' or pg_catalog.jsonb_array_length(variants) < 2
     or pg_catalog.jsonb_array_length(variants) > 20 then
    raise exception using errcode = '22023',
      message = 'variants must be a JSON array of 2 to 20 objects {name, alias or version, weight} (argument variants)';
  end if;
  for v in select * from pg_catalog.jsonb_array_elements(variants) loop
    if pg_catalog.jsonb_typeof(v) <> 'object' or pg_catalog.jsonb_typeof(v -> 'weight') is distinct from 'number' then
      raise exception using errcode = '22023',
        message = pg_catalog.format('every variant needs a numeric weight, got %s (argument variants)', pg_catalog.left(v::text, 200));
    end if;
    w := (v ->> 'weight')::numeric;
    if w < 0 then
      raise exception using errcode = '22023',
        message = pg_catalog.format('variant weight must be >= 0, got %s (argument variants)', w);
    end if;
    total := total + w;
  end loop;
  if pg_catalog.abs(total - 100) <= 0.0001 then
    scale := 100;
  elsif pg_catalog.abs(total - 1) > 0.000001 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('variant weights must sum to 1 (or 100%%), they sum to %s (argument variants)', total);
  end if;
  for v in select * from pg_catalog.jsonb_array_elements(variants) loop
    perform mlops._check_name(v ->> 'name', 'variant name');
    if model_id is null then
      if v ? 'alias' or v ? 'version' then
        raise exception using errcode = '22023',
          message = pg_catalog.format('variant %s names an alias or version but the experiment has no model (argument model)', v ->> 'name');
      end if;
    else
      if (v ? 'alias') = (v ? 'version') then
        raise exception using errcode = '22023',
          message = pg_catalog.format('variant %s needs exactly one of alias or version (argument variants)', v ->> 'name');
      end if;
      perform mlops._resolve_version(model, coalesce(v ->> 'alias', v ->> 'version'));
    end if;
    out := out || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
             'name', v ->> 'name', 'alias', v ->> 'alias', 'version', (v ->> 'version')::integer,
             'weight', ((v ->> 'weight')::numeric / scale)::float8));
  end loop;
  if (select pg_catalog.count(distinct x ->> 'name') from pg_catalog.jsonb_array_elements(out) x)
     <> pg_catalog.jsonb_array_length(out) then
    raise exception using errcode = '22023', message = 'variant names must be unique (argument variants)';
  end if;
  return out;
end
$$;
comment on function mlops._check_variants(jsonb, bigint) is
  'Private: validates and normalizes experiment variants (names, weights summing to 1 or 100, alias/version).';

-- Records a status change or traffic change in the experiment history.
create or replace function mlops._experiment_event(experiment_id bigint, from_status text, to_status text,
                                                   details jsonb default '{}') returns void
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  insert into mlops.experiment_history (experiment_id, from_status, to_status, details)
  values (experiment_id, from_status, to_status, coalesce(details, '{}'))
$$;
comment on function mlops._experiment_event(bigint, text, text, jsonb) is 'Private: appends to mlops.experiment_history.';

-- Refuses a namespace range overlapping another live experiment in the same namespace.
create or replace function mlops._check_namespace(experiment_id bigint, namespace text, range_start float8,
                                                  range_end float8) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  other text;
begin
  if namespace is null then
    return;
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mlops.namespace:' || namespace));
  select x.name into other from mlops.experiments x
   where x.namespace = _check_namespace.namespace and x.status <> 'completed'
     and x.id is distinct from experiment_id
     and x.namespace_start < range_end and range_start < x.namespace_end
   limit 1;
  if other is not null then
    raise exception using errcode = '23P01',
      message = pg_catalog.format('namespace %s range [%s, %s) overlaps experiment %s (argument namespace_range)',
                                  namespace, range_start, range_end, other),
      hint = 'Experiments in one namespace are mutually exclusive: give them disjoint ranges.';
  end if;
end
$$;
comment on function mlops._check_namespace(bigint, text, float8, float8) is
  'Private: raises 23P01 when a namespace range overlaps a live (not completed) experiment of the same namespace.';

-- Creates a draft experiment. variants: [{name, alias | version, weight}], the first is the control.
-- seed defaults to the experiment name (as in GrowthBook); an explicit NULL seed is an error.
create or replace function mlops.create_experiment(
  name text, model text default null, variants jsonb default null, unit text default 'user_id',
  primary_metric text default 'conversion', namespace text default null,
  namespace_range float8[] default '{0,1}', coverage float8 default 1, seed text default '',
  starts_at timestamptz default null, ends_at timestamptz default null, description text default '')
returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint;
  checked jsonb;
  eid bigint;
begin
  perform mlops._check_name(name, 'name');
  if model is not null then
    mid := mlops._model_id(model);
  end if;
  if unit is null or pg_catalog.btrim(unit) = '' then
    raise exception using errcode = '22023', message = 'unit must not be empty (argument unit)';
  end if;
  if primary_metric is null or primary_metric not in ('conversion', 'accuracy', 'reward', 'value') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid primary_metric %L (argument primary_metric)', primary_metric),
      hint = 'One of conversion, accuracy (binary), reward, value (continuous).';
  end if;
  if seed is null then
    raise exception using errcode = '22004', message = 'seed must not be NULL (argument seed)',
      hint = 'Omit it to use the experiment name, like GrowthBook.';
  end if;
  if coverage is null or coverage = 'NaN'::float8 or coverage < 0 or coverage > 1 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('coverage must be in [0, 1], got %s (argument coverage)', coverage);
  end if;
  if namespace_range is null or pg_catalog.cardinality(namespace_range) <> 2 or array_position(namespace_range, null) is not null
     or not (namespace_range[1] >= 0 and namespace_range[2] <= 1 and namespace_range[1] < namespace_range[2]) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('namespace_range must be {start, end} with 0 <= start < end <= 1, got %s (argument namespace_range)',
                                  namespace_range);
  end if;
  if namespace is not null then
    perform mlops._check_name(namespace, 'namespace');
  end if;
  if starts_at is not null and ends_at is not null and ends_at <= starts_at then
    raise exception using errcode = '22023', message = 'ends_at must be after starts_at (argument ends_at)';
  end if;
  checked := mlops._check_variants(variants, mid);
  if exists (select from mlops.experiments x where x.name = create_experiment.name) then
    raise exception using errcode = '42710',
      message = pg_catalog.format('experiment %L already exists (argument name)', name);
  end if;
  perform mlops._check_namespace(null, namespace, namespace_range[1], namespace_range[2]);
  insert into mlops.experiments (name, model_id, unit, primary_metric, namespace, namespace_start, namespace_end,
                                 coverage, seed, starts_at, ends_at, description)
  values (name, mid, unit, primary_metric, namespace, namespace_range[1], namespace_range[2], coverage,
          case when seed = '' then name else seed end, starts_at, ends_at, coalesce(description, ''))
  returning id into eid;
  insert into mlops.experiment_variants (experiment_id, position, name, alias, version, weight)
  select eid, (o - 1)::integer, v ->> 'name', v ->> 'alias', (v ->> 'version')::integer, (v ->> 'weight')::float8
    from pg_catalog.jsonb_array_elements(checked) with ordinality t(v, o);
  perform mlops._experiment_event(eid, null, 'draft', pg_catalog.jsonb_build_object('variants', checked));
  return eid;
end
$$;
comment on function mlops.create_experiment(text, text, jsonb, text, text, text, float8[], float8, text, timestamptz,
                                            timestamptz, text) is
  'Creates a draft experiment: variants [{name, alias|version, weight}] (first = control, weights sum to 1 or 100), '
  'namespace + namespace_range for mutual exclusion, coverage, seed (default: the name). Returns its id.';

-- Moves an experiment to running (from draft or paused): every variant's version must exist
-- and be neither failed nor archived; a namespace may not overlap another live experiment.
create or replace function mlops.start_experiment(experiment text) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments := mlops._experiment(experiment);
  v record;
  vstatus text;
begin
  perform from mlops.experiments x where x.id = e.id for update;
  select * into e from mlops.experiments x where x.id = e.id;
  if e.status not in ('draft', 'paused') then
    raise exception using errcode = '55000',
      message = pg_catalog.format('experiment %s is %s: only draft or paused experiments can start (argument experiment)',
                                  e.name, e.status),
      hint = case e.status when 'running' then 'It is already running.'
                           else 'A concluded experiment does not restart: create a new one.' end;
  end if;
  if e.model_id is not null then
    for v in select * from mlops.experiment_variants x where x.experiment_id = e.id order by x.position loop
      select mv.status into vstatus from mlops.model_versions mv where mv.id = mlops._variant_version_id(e.id, v.position);
      if vstatus in ('failed', 'archived') then
        raise exception using errcode = '55000',
          message = pg_catalog.format('variant %s of experiment %s serves a %s model version (argument experiment)',
                                      v.name, e.name, vstatus),
          hint = 'Point the variant''s alias at a ready version (mlops.set_alias), or create the experiment with another version.';
      end if;
    end loop;
  end if;
  perform mlops._check_namespace(e.id, e.namespace, e.namespace_start, e.namespace_end);
  update mlops.experiments x set status = 'running', started_at = coalesce(x.started_at, pg_catalog.now())
   where x.id = e.id;
  perform mlops._experiment_event(e.id, e.status, 'running');
end
$$;
comment on function mlops.start_experiment(text) is
  'draft|paused -> running, after checking every variant version exists and is not failed/archived.';

-- Pauses a running experiment: assigned units keep their variant, no new units enter.
create or replace function mlops.pause_experiment(experiment text) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments := mlops._experiment(experiment);
begin
  update mlops.experiments x set status = 'paused' where x.id = e.id and x.status = 'running';
  if not found then
    raise exception using errcode = '55000',
      message = pg_catalog.format('experiment %s is %s: only running experiments can pause (argument experiment)',
                                  e.name, e.status),
      hint = case e.status when 'draft' then 'Start it with mlops.start_experiment.'
                           when 'paused' then 'It is already paused.' else 'It has concluded.' end;
  end if;
  perform mlops._experiment_event(e.id, 'running', 'paused');
end
$$;
comment on function mlops.pause_experiment(text) is 'running -> paused: sticky units keep their variant, no new units are assigned.';

-- Changes weights and/or coverage. Units already assigned keep their variant (sticky
-- bucketing); raising coverage only adds units because each range only grows.
create or replace function mlops.set_experiment_traffic(experiment text, weights float8[] default null,
                                                        coverage float8 default null) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments := mlops._experiment(experiment);
  n integer;
  total float8;
  scale float8 := 1;
begin
  perform from mlops.experiments x where x.id = e.id for update;
  if e.status = 'completed' then
    raise exception using errcode = '55000',
      message = pg_catalog.format('experiment %s is completed (argument experiment)', e.name),
      hint = 'A concluded experiment keeps the traffic it ran with: create a new experiment.';
  end if;
  if coverage is not null and (coverage = 'NaN'::float8 or coverage < 0 or coverage > 1) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('coverage must be in [0, 1], got %s (argument coverage)', coverage);
  end if;
  if weights is not null then
    select pg_catalog.count(*) into n from mlops.experiment_variants v where v.experiment_id = e.id;
    if pg_catalog.cardinality(weights) <> n or array_position(weights, null) is not null
       or exists (select from pg_catalog.unnest(weights) w where w < 0 or w = 'NaN'::float8 or w = 'Infinity'::float8) then
      raise exception using errcode = '22023',
        message = pg_catalog.format('weights must be %s finite numbers >= 0 (argument weights)', n);
    end if;
    select sum(w) into total from pg_catalog.unnest(weights) w;
    if pg_catalog.abs(total - 100) <= 0.0001 then
      scale := 100;
    elsif pg_catalog.abs(total - 1) > 0.000001 then
      raise exception using errcode = '22023',
        message = pg_catalog.format('weights must sum to 1 (or 100%%), they sum to %s (argument weights)', total);
    end if;
    update mlops.experiment_variants v set weight = weights[v.position + 1] / scale where v.experiment_id = e.id;
  end if;
  if coverage is not null then
    update mlops.experiments x set coverage = set_experiment_traffic.coverage where x.id = e.id;
  end if;
  perform mlops._experiment_event(e.id, e.status, e.status,
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('weights', weights, 'coverage', coverage)));
end
$$;
comment on function mlops.set_experiment_traffic(text, float8[], float8) is
  'Changes variant weights (sum 1 or 100) and/or coverage; already assigned units keep their variant.';

-- Refuses assignment outside running/paused; returns true when new units may enter now.
create or replace function mlops._assignable(e mlops.experiments) returns boolean
language plpgsql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
begin
  if e.status in ('draft', 'completed') then
    raise exception using errcode = '55000',
      message = pg_catalog.format('experiment %s is %s: units are assigned only while it runs (argument experiment)',
                                  e.name, e.status),
      hint = case e.status when 'draft' then 'Start it with mlops.start_experiment.' else 'It has concluded.' end;
  end if;
  return e.status = 'running' and (e.starts_at is null or e.starts_at <= pg_catalog.now())
     and (e.ends_at is null or pg_catalog.now() < e.ends_at);
end
$$;
comment on function mlops._assignable(mlops.experiments) is
  'Private: raises 55000 for draft/completed experiments; true when new units may be assigned now.';

-- Assigns one unit: its sticky variant if it has one, otherwise GrowthBook v2 bucketing
-- (namespace, coverage, weights), recording the first exposure once. NULL = not in the experiment.
-- Hot path (unit already assigned): one indexed query, no other call.
create or replace function mlops.assign(experiment text, unit_id text) returns text
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  r record;
  e mlops.experiments;
  n float8;
  weights float8[];
  names text[];
  slot integer;
  pos integer;
  name text;
begin
  if unit_id is null or unit_id = '' then
    raise exception using errcode = '22023', message = 'unit_id must not be empty (argument unit_id)';
  end if;
  select x as e, (select v.name from mlops.experiment_assignments a
                    join mlops.experiment_variants v on v.experiment_id = a.experiment_id and v.position = a.variant
                   where a.experiment_id = x.id and a.unit_id = assign.unit_id) as sticky
    into r from mlops.experiments x where x.name = assign.experiment;
  if not found then
    perform mlops._experiment(experiment);  -- raises 42704
  end if;
  e := r.e;
  if r.sticky is not null and e.status in ('running', 'paused') then
    return r.sticky;
  end if;
  if not mlops._assignable(e) then  -- raises for draft/completed
    return null;
  end if;
  -- shared with other single assigns, exclusive against a recording assign_batch (see there)
  perform pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtext('mlops.experiment_assignments'), e.id::integer);
  if e.namespace is not null and not mlops.gb_in_namespace(unit_id, e.namespace, e.namespace_start, e.namespace_end) then
    return null;
  end if;
  n := mlops.gb_hash(e.seed, unit_id, 2);
  select pg_catalog.array_agg(v.weight order by v.position), pg_catalog.array_agg(v.name order by v.position)
    into weights, names from mlops.experiment_variants v where v.experiment_id = e.id;
  slot := pg_catalog.width_bucket(n, mlops._gb_thresholds(weights, e.coverage));
  if slot % 2 = 0 then  -- a gap left by coverage
    return null;
  end if;
  pos := (slot - 1) / 2;
  name := names[pos + 1];
  insert into mlops.experiment_assignments (experiment_id, unit_id, variant) values (e.id, unit_id, pos)
  on conflict do nothing;
  if not found then  -- a concurrent first exposure won: use what it recorded
    select v.name into name from mlops.experiment_assignments a
      join mlops.experiment_variants v on v.experiment_id = a.experiment_id and v.position = a.variant
     where a.experiment_id = e.id and a.unit_id = assign.unit_id;
  end if;
  return name;
end
$$;
comment on function mlops.assign(text, text) is
  'Variant of a unit (GrowthBook v2 compatible, sticky once assigned; first exposure recorded once); '
  'NULL when the unit is outside the namespace/coverage or the experiment is paused. Errors on draft/completed.';

-- Set-based assignment of many units: sticky lookups (hash join or index probes), the
-- GrowthBook hash only for units without a sticky variant (unrolled FNV-1a, see
-- mlops._gb_hash_sql), new first exposures inserted once in index order. Rows come back in
-- input order. With pgmlops_python installed, mlops._gb_assign_py (numpy) computes every id's
-- variant position in one call instead of the SQL hash (same results; tests check both).
create or replace function mlops.assign_batch(experiment text, unit_ids text[], record boolean default true)
returns table (unit_id text, variant text)
language plpgsql volatile set search_path = pg_catalog, pg_temp set work_mem = '256MB' set jit = off
as $$
declare
  e mlops.experiments := mlops._experiment(experiment);
  open boolean;
  thresholds float8[];
  names text[];
  ns_lo integer;
  ns_hi integer;
  fresh text;
  lo integer;
  hi integer;
  small boolean;
  assigned bigint;
  lookup text;
  accel regprocedure;
  positions integer[];
  sticky_ord bigint[];
  sticky_variant integer[];
begin
  open := mlops._assignable(e);
  if pg_catalog.array_ndims(unit_ids) > 1 then
    raise exception using errcode = '22023', message = 'unit_ids must be a one-dimensional array (argument unit_ids)';
  end if;
  if unit_ids is null or array_position(unit_ids, null) is not null or array_position(unit_ids, '') is not null then
    raise exception using errcode = '22023', message = 'unit_ids must not be NULL or contain NULL or empty ids (argument unit_ids)';
  end if;
  if record then
    -- Recording batches of one experiment run one at a time (and wait for single assigns), so
    -- the anti-join below sees every recorded unit and a plain INSERT (cheaper than ON
    -- CONFLICT) cannot collide.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mlops.experiment_assignments'), e.id::integer);
  end if;
  -- Bucket ranges as one sorted threshold array (mlops._gb_thresholds): width_bucket finds
  -- n's slot, odd slots are variants, even slots the gaps left by coverage.
  select mlops._gb_thresholds(pg_catalog.array_agg(v.weight order by v.position), e.coverage),
         pg_catalog.array_agg(v.name order by v.position)
    into thresholds, names
    from mlops.experiment_variants v where v.experiment_id = e.id;
  -- inNamespace: the v1 buckets k (n = k / 1000) inside [namespace_start, namespace_end) are one run
  select coalesce(min(k), 1), coalesce(max(k), 0) into ns_lo, ns_hi
    from pg_catalog.generate_series(0, 999) k
   where k::float8 / 1000 >= e.namespace_start and k::float8 / 1000 < e.namespace_end;
  -- one pass: sticky lookup, then the hash of the units without a sticky variant. While the
  -- experiment has fewer assigned units than twice the batch (counted up to that bound), one
  -- hash join reads them all; beyond, one index probe per id (the LIMIT keeps it a nested
  -- loop), so the cost follows the batch rather than the experiment's history.
  select pg_catalog.count(*) into assigned
    from (select from mlops.experiment_assignments a where a.experiment_id = e.id
           limit 2 * pg_catalog.cardinality(unit_ids)) a;
  small := assigned < 2 * pg_catalog.cardinality(unit_ids);
  lookup := case when small
                 then 'join mlops.experiment_assignments a on a.experiment_id = $2 and a.unit_id = x.u'
                 else 'join lateral (select a.variant from mlops.experiment_assignments a
                       where a.experiment_id = $2 and a.unit_id = x.u limit 1) a on true' end;
  accel := pg_catalog.to_regprocedure('mlops._gb_assign_py(text, text[], float8[], text, integer, integer, bigint[], integer[])');
  -- Both paths code every id in input order into positions: the variant position p >= 0 of a
  -- new unit, -1 when it gets none, -2 - v for a unit whose sticky variant is v. No new unit
  -- enters unless the experiment is open.
  if accel is not null and pg_catalog.has_function_privilege(accel, 'execute') then
    -- pgmlops_python: the sticky units of the batch, then one numpy call
    if assigned > 0 then
      execute pg_catalog.format($q$
        select pg_catalog.array_agg(x.ord), pg_catalog.array_agg(a.variant)
          from (select x.u collate "C" as u, x.ord from pg_catalog.unnest($1) with ordinality x(u, ord)) x
          %s$q$, lookup) into sticky_ord, sticky_variant using unit_ids, e.id;
    end if;
    execute 'select mlops._gb_assign_py($1, $2, $3, $4, $5, $6, $7, $8)' into positions
      using e.seed, unit_ids, case when open then thresholds else '{}'::float8[] end, '__' || e.namespace, ns_lo, ns_hi,
            sticky_ord, sticky_variant;
  else
    -- SQL path: one statement joins the sticky lookup and, for the units without a sticky
    -- variant, the unrolled FNV-1a of mlops._gb_hash_sql over the byte lengths of the batch's ids
    select min(pg_catalog.octet_length(u)), least(max(pg_catalog.octet_length(u)), 64) into lo, hi
      from pg_catalog.unnest(unit_ids) u;
    lo := least(coalesce(lo, 1), coalesce(hi, 1));
    hi := coalesce(hi, 1);
    fresh := mlops._gb_hash_sql(e.seed, 2, pg_catalog.format($q$
      select x.u, x.ord, a.variant as sticky
        from (select x.u collate "C" as u, x.ord from pg_catalog.unnest($1) with ordinality x(u, ord)) x
        %s$q$, 'left ' || lookup),
      'k', 's.sticky is null', lo, hi);
    if e.namespace is not null then
      fresh := mlops._gb_hash_sql('__' || e.namespace, 1, fresh, 'kn', 's.sticky is null', lo, hi);
    end if;
    execute pg_catalog.format($q$
      select pg_catalog.array_agg(case when h.sticky is not null then -2 - h.sticky
                                       when $4%1$s and h.wb %% 2 = 1 then (h.wb - 1) / 2 else -1 end order by h.ord)
        from (select h.*, pg_catalog.width_bucket(h.k::float8 / 10000, $3) as wb from (%2$s) h offset 0) h$q$,
      case when e.namespace is not null then ' and h.kn between $5 and $6' else '' end, fresh)
      into positions using unit_ids, e.id, thresholds, open, ns_lo, ns_hi;
  end if;
  if coalesce(pg_catalog.cardinality(positions), 0) <> pg_catalog.cardinality(unit_ids) then
    -- unnest in the select list would pad the shorter array with NULLs: never record from that
    raise exception using errcode = 'XX000',
      message = pg_catalog.format('assign_batch coded %s of %s unit ids', pg_catalog.cardinality(positions),
                                  pg_catalog.cardinality(unit_ids));
  end if;
  -- The two arrays (same length) are zipped by unnest in the select list: a ProjectSet streams
  -- element i of both in input order, where ROWS FROM (unnest, unnest) would first copy each
  -- into a tuplestore (0.09 s against 0.24 s per 1M ids).
  if record then  -- new first exposures in index order (cheap btree inserts); duplicate ids recorded once
    insert into mlops.experiment_assignments (experiment_id, unit_id, variant)
    select distinct on (x.u) e.id, x.u, x.p
      from (select pg_catalog.unnest(unit_ids) collate "C" as u, pg_catalog.unnest(positions) as p) x
     where x.p >= 0 order by x.u;
  end if;
  -- no join or sort: rows come in input order
  return query select x.u, names[case when x.p >= 0 then x.p + 1 when x.p <= -2 then -1 - x.p end]
    from (select pg_catalog.unnest(unit_ids) as u, pg_catalog.unnest(positions) as p) x;
end
$$;
comment on function mlops.assign_batch(text, text[], boolean) is
  'assign() for many units in one set-based statement (input order kept); record => false computes without '
  'recording first exposures. NULL variant = not in the experiment.';

-- Model version to serve a unit: through the named experiment, or the running experiment of
-- the named model; units outside it (or no running experiment) get the champion alias,
-- else the control variant's version. Also says which experiment and variant served it.
create or replace function mlops._route(experiment_or_model text, unit_id text, out model text,
                                        out experiment text, out variant text, out version integer)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  e mlops.experiments;
  mid bigint;
  vid bigint;
begin
  if unit_id is null or unit_id = '' then
    raise exception using errcode = '22023', message = 'unit_id must not be empty (argument unit_id)';
  end if;
  select * into e from mlops.experiments x where x.name = experiment_or_model;
  if found then
    mid := e.model_id;
    if mid is null then
      raise exception using errcode = '22023',
        message = pg_catalog.format('experiment %s has no model to route to (argument experiment_or_model)', e.name);
    end if;
  else
    select m.id into mid from mlops.models m where m.name = experiment_or_model;
    if mid is null then
      raise exception using errcode = '42704',
        message = pg_catalog.format('no experiment or model named %L (argument experiment_or_model)', experiment_or_model);
    end if;
    select * into e from mlops.experiments x where x.model_id = mid and x.status in ('running', 'paused')
     order by x.status = 'running' desc, x.started_at desc limit 1;
  end if;
  if e.id is not null and e.status in ('running', 'paused') then
    variant := mlops.assign(e.name, unit_id);
    if variant is not null then
      experiment := e.name;
      vid := mlops._variant_version_id(e.id, (select x.position from mlops.experiment_variants x
                                               where x.experiment_id = e.id and x.name = variant));
    end if;
  end if;
  if vid is null then
    select a.version_id into vid from mlops.model_aliases a where a.model_id = mid and a.alias = 'champion';
  end if;
  if vid is null and e.id is not null then
    vid := mlops._variant_version_id(e.id, 0);
  end if;
  if vid is null then
    raise exception using errcode = 'P0002',
      message = pg_catalog.format('nothing to route %L to: no running experiment variant and no champion alias (argument experiment_or_model)',
                                  experiment_or_model),
      hint = 'Start an experiment on the model, or set its champion alias with mlops.set_alias.';
  end if;
  select m.name, mv.version into model, version
    from mlops.model_versions mv join mlops.models m on m.id = mv.model_id where mv.id = vid;
end
$$;
comment on function mlops._route(text, text) is
  'Private: model, experiment, variant and version number serving unit_id (see mlops.route).';

-- The version number of mlops._route, for callers that need only the version to serve.
create or replace function mlops.route(experiment_or_model text, unit_id text) returns integer
language sql volatile set search_path = pg_catalog, pg_temp
as $$ select (mlops._route(experiment_or_model, unit_id)).version $$;
comment on function mlops.route(text, text) is
  'Model version number to serve unit_id: via the experiment (or the model''s running experiment), else the champion alias.';

-- Routed, logged prediction: picks the version through the experiment, scores the features
-- (linear flavor in plain SQL; other flavors through mlops.predict of pgmlops_python when
-- installed) and logs the prediction with experiment and variant.
create or replace function mlops.predict_routed(experiment_or_model text, unit_id text, features jsonb,
                                                request_id text default null)
returns table (logged_request_id text, model text, experiment text, variant text, version integer, score float8)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  r record := mlops._route(experiment_or_model, unit_id);
  flavor text;
  started timestamptz := pg_catalog.clock_timestamp();
begin
  if features is null or pg_catalog.jsonb_typeof(features) not in ('object', 'array') then
    raise exception using errcode = '22023', message = 'features must be a JSON object or array (argument features)';
  end if;
  select mv.flavor into flavor from mlops.model_versions mv join mlops.models m on m.id = mv.model_id
   where m.name = r.model and mv.version = r.version;
  if flavor = 'linear' then
    score := mlops.predict_sql(r.model, r.version::text, features);
  elsif pg_catalog.to_regprocedure('mlops.predict(text, text, float8[])') is not null
        and pg_catalog.jsonb_typeof(features) = 'array' then
    execute 'select mlops.predict($1, $2, $3)' into score
      using r.model, r.version::text,
            (select array_agg(x::float8 order by o) from pg_catalog.jsonb_array_elements_text(features) with ordinality t(x, o));
  else
    raise exception using errcode = '0A000',
      message = pg_catalog.format('version %s of %s is %s: in-database inference needs the linear flavor or pgmlops_python with a features array (argument features)',
                                  r.version, r.model, flavor);
  end if;
  logged_request_id := coalesce(predict_routed.request_id, pg_catalog.gen_random_uuid()::text);
  perform mlops.log_prediction(r.model, request_id => logged_request_id, version => r.version,
                               features => features, score => predict_routed.score, unit_id => predict_routed.unit_id,
                               experiment => r.experiment, variant => r.variant,
                               latency_ms => extract(epoch from pg_catalog.clock_timestamp() - started)::float8 * 1000);
  model := r.model; experiment := r.experiment; variant := r.variant; version := r.version;
  return next;
end
$$;
comment on function mlops.predict_routed(text, text, jsonb, text) is
  'Scores features for unit_id with the version the experiment (or model''s running experiment / champion) routes '
  'it to, and logs the prediction with experiment and variant; returns logged_request_id, model, experiment, variant, version, score.';
