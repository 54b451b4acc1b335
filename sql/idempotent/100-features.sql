-- Feature store: entities, typed feature groups (one table per version), online lookup
-- with TTL enforced on read, point-in-time training sets, window aggregates, freshness
-- and validation. Group tables: mlops_features.<group>__v<version> holds the history
-- (<entity key column>, event_ts, created_at, one column per feature) and
-- mlops_features.<group>__v<version>_online the newest row per entity (kept by trigger).

-- Schema holding pgvector's type and operator classes (vector features).
create or replace function mlops._vector_schema() returns name
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select n.nspname from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'vector'
$$;
comment on function mlops._vector_schema() is 'Private: schema of the pgvector extension.';

-- Registers an entity: the thing feature rows are keyed by. The key column of every group
-- table of this entity is named key_column (default <name>_id).
create or replace function mlops.create_entity(name text, key_type text default 'int8', description text default '',
                                               key_column text default null) returns text
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  col text := coalesce(key_column, create_entity.name || '_id');
  existing mlops.entities;
begin
  perform mlops._check_name(create_entity.name, 'entity name');
  perform mlops._check_name(col, 'key_column');
  if key_type is null or key_type not in ('int8', 'int4', 'text', 'uuid') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid key_type %L for entity %s', key_type, create_entity.name),
      hint = 'Use int8, int4, text or uuid.';
  end if;
  if col in ('event_ts', 'created_at') then
    raise exception using errcode = '22023', message = pg_catalog.format('key_column %s is reserved', col);
  end if;
  select * into existing from mlops.entities e where e.name = create_entity.name;
  if found then
    if existing.key_type <> create_entity.key_type or existing.key_column <> col then
      raise exception using errcode = '23505',
        message = pg_catalog.format('entity %s already exists with key %s %s', existing.name,
                                    existing.key_column, existing.key_type);
    end if;
    update mlops.entities e set description = coalesce(create_entity.description, '') where e.name = existing.name;
    return col;
  end if;
  insert into mlops.entities (name, key_type, key_column, description)
  values (create_entity.name, create_entity.key_type, col, coalesce(create_entity.description, ''));
  return col;
end
$$;
comment on function mlops.create_entity(text, text, text, text) is
  'Registers an entity (name, key_type int8|int4|text|uuid, description, key_column default <name>_id); returns the key column name used by every group table of this entity. Idempotent.';

-- SQL type of an entity key.
create or replace function mlops._key_sqltype(key_type text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select case key_type when 'int8' then 'bigint' when 'int4' then 'integer' when 'text' then 'text'
                       when 'uuid' then 'uuid' end
$$;
comment on function mlops._key_sqltype(text) is 'Private: SQL type of an entity key_type.';

-- Turns the user's feature definitions (json object name -> type or {type, rules}, or an
-- array of {name, type, rules}) into a normalized jsonb array; rejects duplicates,
-- reserved or invalid names, unknown types and rules.
create or replace function mlops._normalize_features(features json, key_column text) returns jsonb
language plpgsql immutable set search_path = pg_catalog, pg_temp
as $$
declare
  item record;
  spec json;
  fname text;
  ftype text;
  dims integer;
  rule text;
  result jsonb := '[]';
  seen text[] := '{}';
  numeric_type boolean;
begin
  if features is null or pg_catalog.json_typeof(features) not in ('object', 'array') then
    raise exception using errcode = '22023', message = 'features must be a json object {name: type} or an array of {name, type}';
  end if;
  for item in
    select o.key as k, o.value as v from pg_catalog.json_each(features) o where pg_catalog.json_typeof(features) = 'object'
    union all
    select a.value ->> 'name', a.value from pg_catalog.json_array_elements(features) a where pg_catalog.json_typeof(features) = 'array'
  loop
    fname := item.k;
    perform mlops._check_name(fname, 'feature name');
    if fname = any (seen) then
      raise exception using errcode = '42701', message = pg_catalog.format('duplicate feature name %s', fname);
    end if;
    if fname in (key_column, 'event_ts', 'created_at') then
      raise exception using errcode = '42701',
        message = pg_catalog.format('feature name %s is reserved (key column, event_ts, created_at)', fname);
    end if;
    seen := seen || fname;
    spec := case when pg_catalog.json_typeof(item.v) = 'string' then pg_catalog.json_build_object('type', item.v #>> '{}')
                 else item.v end;
    if pg_catalog.json_typeof(spec) <> 'object' then
      raise exception using errcode = '22023', message = pg_catalog.format('feature %s: definition must be a type name or an object', fname);
    end if;
    for rule in select pg_catalog.json_object_keys(spec) loop
      if rule not in ('name', 'type', 'not_null', 'min', 'max', 'allowed', 'allow_nan') then
        raise exception using errcode = '22023', message = pg_catalog.format('feature %s: unknown rule %s', fname, rule),
          hint = 'Rules: not_null, min, max, allowed, allow_nan.';
      end if;
    end loop;
    ftype := pg_catalog.lower(spec ->> 'type');
    dims := null;
    if ftype ~ '^vector\(\s*[0-9]{1,5}\s*\)$' then
      dims := pg_catalog.substring(ftype, '[0-9]+')::integer;
      if dims < 1 or dims > 16000 then
        raise exception using errcode = '22023', message = pg_catalog.format('feature %s: vector dimension %s out of range', fname, dims);
      end if;
      ftype := 'vector';
    elsif ftype is null or ftype not in ('int8', 'int4', 'float8', 'float4', 'bool', 'text', 'jsonb', 'timestamptz') then
      raise exception using errcode = '22023',
        message = pg_catalog.format('feature %s: unknown type %s', fname, coalesce(spec ->> 'type', 'NULL')),
        hint = 'Types: int8, int4, float8, float4, bool, text, jsonb, timestamptz, vector(N).';
    end if;
    numeric_type := ftype in ('int8', 'int4', 'float8', 'float4');
    if (spec -> 'min' is not null or spec -> 'max' is not null) and not numeric_type then
      raise exception using errcode = '22023', message = pg_catalog.format('feature %s: min/max need a numeric type, not %s', fname, ftype);
    end if;
    if (spec -> 'min' is not null and pg_catalog.json_typeof(spec -> 'min') <> 'number')
       or (spec -> 'max' is not null and pg_catalog.json_typeof(spec -> 'max') <> 'number') then
      raise exception using errcode = '22023', message = pg_catalog.format('feature %s: min/max must be numbers', fname);
    end if;
    if spec -> 'allowed' is not null and (pg_catalog.json_typeof(spec -> 'allowed') <> 'array'
                                           or ftype not in ('text', 'int8', 'int4')) then
      raise exception using errcode = '22023',
        message = pg_catalog.format('feature %s: allowed must be an array on a text or integer feature', fname);
    end if;
    result := result || pg_catalog.jsonb_build_array(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
      'name', fname, 'type', ftype, 'dims', dims,
      'not_null', coalesce((spec ->> 'not_null')::boolean, false),
      'min', (spec ->> 'min')::float8, 'max', (spec ->> 'max')::float8,
      'allowed', (spec -> 'allowed')::jsonb,
      'allow_nan', coalesce((spec ->> 'allow_nan')::boolean, false))));
  end loop;
  if pg_catalog.jsonb_array_length(result) = 0 then
    raise exception using errcode = '22023', message = 'features: a feature group needs at least one feature';
  end if;
  return result;
end
$$;
comment on function mlops._normalize_features(json, text) is 'Private: validates and normalizes feature definitions of create_feature_group.';

-- SQL column type of a normalized feature.
create or replace function mlops._feature_sqltype(f jsonb) returns text
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select case f ->> 'type'
           when 'int8' then 'bigint' when 'int4' then 'integer' when 'float8' then 'double precision'
           when 'float4' then 'real' when 'bool' then 'boolean' when 'text' then 'text' when 'jsonb' then 'jsonb'
           when 'timestamptz' then 'timestamptz'
           when 'vector' then pg_catalog.format('%I.vector(%s)', mlops._vector_schema(), (f ->> 'dims')::integer)
         end
$$;
comment on function mlops._feature_sqltype(jsonb) is 'Private: SQL type of a normalized feature definition.';

-- Statement-level trigger on a group's history table: upserts the newest row per entity of
-- the inserted rows into the online table; the upsert's WHERE keeps an older event from
-- overwriting a newer one (ties: the later write wins). TG_ARGV[0] is the upsert built by
-- create_feature_group, TG_ARGV[1] 'notify' sends NOTIFY mlops_features per entity.
create or replace function mlops._feature_online_sync() returns trigger
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  payload text;
begin
  execute tg_argv[0];
  if tg_argv[1] = 'notify' then
    for payload in execute tg_argv[2] loop
      perform pg_catalog.pg_notify('mlops_features', payload);
    end loop;
  end if;
  return null;
end
$$;
comment on function mlops._feature_online_sync() is
  'Private: trigger keeping mlops_features.<group>__v<n>_online at the newest event per entity; optional NOTIFY mlops_features.';

-- Creates (or versions) a feature group: a typed history table with CHECK constraints from
-- the rules and an index on (key, event_ts desc), an online table kept by trigger, HNSW
-- indexes on vector features. Same definition again: metadata updated, same version.
create or replace function mlops.create_feature_group(name text, entity text, features json, ttl interval default null,
                                                      description text default '', source text default null,
                                                      freshness_sla interval default null,
                                                      notify boolean default false) returns text
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  ent mlops.entities;
  spec jsonb;
  cur mlops.feature_group_versions;
  new_version integer;
  tbl text;
  online text;
  keytype text;
  f jsonb;
  cols text := '';
  checks text := '';
  col text;
  gid bigint;
  prev mlops.aggregate_features;
  reason text;
begin
  perform mlops._check_name(create_feature_group.name, 'feature group name');
  if pg_catalog.length(create_feature_group.name) > 45 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('feature group name %s is longer than 45 characters', create_feature_group.name),
      hint = 'Group tables are named <group>__v<version>_online and must fit in 63 characters.';
  end if;
  if ttl is not null and ttl <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('ttl must be positive, got %s', ttl);
  end if;
  if freshness_sla is not null and freshness_sla <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('freshness_sla must be positive, got %s', freshness_sla);
  end if;
  select * into ent from mlops.entities e where e.name = create_feature_group.entity;
  if not found then
    raise exception using errcode = '42704', message = pg_catalog.format('unknown entity %L', create_feature_group.entity),
      hint = 'Create it first with mlops.create_entity(name => ..., key_type => ...).';
  end if;
  spec := mlops._normalize_features(features, ent.key_column);
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mlops.feature_group:' || create_feature_group.name));
  select * into cur from mlops.feature_group_versions g where g.name = create_feature_group.name and g.is_current;
  if found and cur.spec = spec and cur.entity = ent.name then
    update mlops.feature_group_versions g
       set ttl = create_feature_group.ttl, freshness_sla = create_feature_group.freshness_sla,
           description = coalesce(create_feature_group.description, ''), source = create_feature_group.source,
           notify = coalesce(create_feature_group.notify, false)
     where g.id = cur.id;
    if cur.notify is distinct from coalesce(create_feature_group.notify, false) then
      perform mlops._feature_group_trigger(cur.id);  -- the trigger carries the notify flag
    end if;
    if cur.ttl is distinct from create_feature_group.ttl then  -- online queries carry the ttl
      perform pg_catalog.pg_notify('mlops_feature_groups',
        pg_catalog.json_build_object('group', cur.name, 'version', cur.version)::text);
    end if;
    return pg_catalog.format('mlops_features.%I', cur.table_name);
  end if;
  new_version := coalesce((select pg_catalog.max(g.version) from mlops.feature_group_versions g
                            where g.name = create_feature_group.name), 0) + 1;
  tbl := pg_catalog.format('%s__v%s', create_feature_group.name, new_version);
  online := tbl || '_online';
  if pg_catalog.to_regclass(pg_catalog.format('mlops_features.%I', tbl)) is not null
     or pg_catalog.to_regclass(pg_catalog.format('mlops_features.%I', online)) is not null then
    raise exception using errcode = '42P07', message = pg_catalog.format('table mlops_features.%I already exists', tbl);
  end if;
  keytype := mlops._key_sqltype(ent.key_type);
  for f in select value from pg_catalog.jsonb_array_elements(spec) loop
    col := f ->> 'name';
    cols := cols || pg_catalog.format(', %I %s', col, mlops._feature_sqltype(f));
    if (f ->> 'not_null')::boolean then
      checks := checks || pg_catalog.format(', constraint %I check (%I is not null)', col || '__not_null', col);
    end if;
    if f ? 'min' then
      checks := checks || pg_catalog.format(', constraint %I check (%I >= %s)', col || '__min', col, f ->> 'min');
    end if;
    if f ? 'max' then
      -- NaN sorts above every number: leave it to the NaN rule (allow_nan), not to max
      checks := checks || pg_catalog.format(', constraint %I check (%I <= %s%s)', col || '__max', col, f ->> 'max',
                  case when f ->> 'type' in ('float8', 'float4') then pg_catalog.format(' or %I = ''NaN''', col) else '' end);
    end if;
    if f ? 'allowed' then
      checks := checks || pg_catalog.format(', constraint %I check (%I::text = any (%L::text[]))', col || '__allowed', col,
                  (select pg_catalog.array_agg(a) from pg_catalog.jsonb_array_elements_text(f -> 'allowed') a));
    end if;
    if f ->> 'type' in ('float8', 'float4') and not (f ->> 'allow_nan')::boolean then
      checks := checks || pg_catalog.format(', constraint %I check (%I not in (''NaN'', ''Infinity'', ''-Infinity''))',
                                            col || '__finite', col);
    end if;
  end loop;
  execute pg_catalog.format(
    'create table mlops_features.%I (%I %s not null, event_ts timestamptz not null, '
    'created_at timestamptz not null default pg_catalog.now()%s%s)', tbl, ent.key_column, keytype, cols, checks);
  execute pg_catalog.format('create index %I on mlops_features.%I (%I, event_ts desc, created_at desc)',
                            tbl || '_key_ts', tbl, ent.key_column);
  execute pg_catalog.format(
    'create table mlops_features.%I (%I %s primary key, event_ts timestamptz not null, created_at timestamptz not null%s)',
    online, ent.key_column, keytype, cols);
  execute pg_catalog.format('create index %I on mlops_features.%I (event_ts)', online || '_ts', online);
  for f in select value from pg_catalog.jsonb_array_elements(spec) where value ->> 'type' = 'vector' loop
    if (f ->> 'dims')::integer <= 2000 then
      execute pg_catalog.format('create index %I on mlops_features.%I using hnsw (%I %I.vector_cosine_ops)',
                                online || '_' || (f ->> 'name') || '_hnsw', online, f ->> 'name', mlops._vector_schema());
    end if;
  end loop;
  execute pg_catalog.format('comment on table mlops_features.%I is %L', tbl,
    pg_catalog.format('Feature group %s version %s (entity %s, key %s): history, one row per (key, event).',
                      create_feature_group.name, new_version, ent.name, ent.key_column));
  execute pg_catalog.format('comment on table mlops_features.%I is %L', online,
    pg_catalog.format('Feature group %s version %s: newest row per %s, kept by trigger; TTL is applied on read.',
                      create_feature_group.name, new_version, ent.key_column));
  -- column comments: BI tools show them as descriptions of the group tables' columns
  foreach col in array array[tbl, online] loop
    execute pg_catalog.format('comment on column mlops_features.%I.%I is %L', col, ent.key_column,
                              pg_catalog.format('Key of entity %s.', ent.name));
    execute pg_catalog.format('comment on column mlops_features.%I.event_ts is %L', col,
                              'Event time of the values: point-in-time joins and the TTL use it.');
    execute pg_catalog.format('comment on column mlops_features.%I.created_at is %L', col,
                              'When the row was written (ties on event_ts go to the later write).');
    for f in select value from pg_catalog.jsonb_array_elements(spec) loop
      execute pg_catalog.format('comment on column mlops_features.%I.%I is %L', col, f ->> 'name',
        pg_catalog.format('Feature %s (%s%s%s%s%s).', f ->> 'name', mlops._feature_sqltype(f),
                          case when (f ->> 'not_null')::boolean then ', not null' else '' end,
                          case when f ? 'min' then ', >= ' || (f ->> 'min') else '' end,
                          case when f ? 'max' then ', <= ' || (f ->> 'max') else '' end,
                          case when f ? 'allowed' then ', one of ' || (f -> 'allowed')::text else '' end));
    end loop;
  end loop;
  execute pg_catalog.format('grant select on mlops_features.%I, mlops_features.%I to mlops_reader', tbl, online);
  execute pg_catalog.format('grant insert on mlops_features.%I to mlops_writer', tbl);
  execute pg_catalog.format('grant insert, update, delete on mlops_features.%I to mlops_writer', online);
  update mlops.feature_group_versions g set is_current = false where g.name = create_feature_group.name and g.is_current;
  insert into mlops.feature_group_versions (name, version, entity, spec, ttl, freshness_sla, notify, description, source,
                                            table_name, online_table)
  values (create_feature_group.name, new_version, ent.name, spec, create_feature_group.ttl,
          create_feature_group.freshness_sla, coalesce(create_feature_group.notify, false),
          coalesce(create_feature_group.description, ''), create_feature_group.source, tbl, online)
  returning id into gid;
  insert into mlops.feature_defs (group_id, name, position, data_type, dims, not_null, min_value, max_value, allowed)
  select gid, e.value ->> 'name', e.ordinality::integer, e.value ->> 'type', (e.value ->> 'dims')::integer,
         (e.value ->> 'not_null')::boolean, (e.value ->> 'min')::float8, (e.value ->> 'max')::float8, e.value -> 'allowed'
    from pg_catalog.jsonb_array_elements(spec) with ordinality e;
  -- window aggregates of the previous version carry over when their source feature still fits
  if cur.id is not null then
    for prev in select * from mlops.aggregate_features x where x.group_id = cur.id order by x.name loop
      reason := case
        when exists (select from mlops.feature_defs d where d.group_id = gid and d.name = prev.name)
          then 'a feature of that name now exists'
        when prev.feature <> '*' and not exists (select from mlops.feature_defs d where d.group_id = gid and d.name = prev.feature)
          then pg_catalog.format('its feature %s was removed', prev.feature)
        when prev.agg <> 'count' and not exists (select from mlops.feature_defs d where d.group_id = gid and d.name = prev.feature
                                                  and d.data_type in ('int8', 'int4', 'float8', 'float4'))
          then pg_catalog.format('its feature %s is no longer numeric', prev.feature)
        end;
      if reason is null then
        insert into mlops.aggregate_features (group_id, name, feature, agg, window_size)
        values (gid, prev.name, prev.feature, prev.agg, prev.window_size);
      else
        raise warning using message = pg_catalog.format(
          'feature group %s version %s: window aggregate %s (%s of %s over %s) not carried over: %s',
          create_feature_group.name, new_version, prev.name, prev.agg, prev.feature, prev.window_size, reason);
      end if;
    end loop;
  end if;
  perform mlops._feature_group_trigger(gid);
  perform pg_catalog.pg_notify('mlops_feature_groups',
    pg_catalog.json_build_object('group', create_feature_group.name, 'version', new_version)::text);
  return pg_catalog.format('mlops_features.%I', tbl);
end
$$;
comment on function mlops.create_feature_group(text, text, json, interval, text, text, interval, boolean) is
  'Creates a feature group version: table mlops_features.<name>__v<version> with columns (<entity key_column>, event_ts timestamptz, created_at timestamptz, one column per feature), '
  'index (key, event_ts desc), CHECK constraints <feature>__<rule> from rules (not_null, min, max, allowed; NaN and +-Infinity rejected (__finite) unless allow_nan), online table <table>_online kept by trigger, HNSW on vector features. '
  'features: json {name: type | {type, rules}} or [{name, type, rules}]; types int8|int4|float8|float4|bool|text|jsonb|timestamptz|vector(N). '
  'A different definition creates a new version (old tables stay readable) that keeps the window aggregates of the previous one whose source feature still exists (with a numeric type unless count; a WARNING names any other); the same one only updates ttl/sla/description. '
  'A new version or a ttl change sends NOTIFY mlops_feature_groups {group, version} so clients re-build cached online queries. Returns the table name.';

-- (Re)creates the online-sync trigger of a group version from its registry row.
create or replace function mlops._feature_group_trigger(group_id bigint) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  g mlops.feature_group_versions;
  keycol text;
  names text;
  sets text;
  upsert text;
  notify_sql text;
begin
  select * into g from mlops.feature_group_versions v where v.id = group_id;
  select e.key_column into keycol from mlops.entities e where e.name = g.entity;
  select pg_catalog.string_agg(pg_catalog.format(', %I', d.name), '' order by d.position),
         pg_catalog.string_agg(pg_catalog.format(', %I = excluded.%I', d.name, d.name), '' order by d.position)
    into names, sets from mlops.feature_defs d where d.group_id = g.id;
  upsert := pg_catalog.format(
    'insert into mlops_features.%1$I as o (%2$I, event_ts, created_at%3$s) '
    'select distinct on (%2$I) %2$I, event_ts, created_at%3$s from new_rows '
    'order by %2$I, event_ts desc, created_at desc '
    'on conflict (%2$I) do update set event_ts = excluded.event_ts, created_at = excluded.created_at%4$s '
    'where o.event_ts < excluded.event_ts or (o.event_ts = excluded.event_ts and o.created_at <= excluded.created_at)',
    g.online_table, keycol, names, sets);
  notify_sql := pg_catalog.format(
    'select pg_catalog.json_build_object(''group'', %L, ''version'', %s, ''entity'', k::text)::text '
    'from (select distinct %I as k from new_rows limit 1000) s', g.name, g.version, keycol);
  if exists (select from pg_catalog.pg_trigger t
              where t.tgrelid = pg_catalog.format('mlops_features.%I', g.table_name)::regclass and t.tgname = 'online_sync') then
    execute pg_catalog.format('drop trigger online_sync on mlops_features.%I', g.table_name);
  end if;
  execute pg_catalog.format(
    'create trigger online_sync after insert on mlops_features.%I referencing new table as new_rows '
    'for each statement execute function mlops._feature_online_sync(%L, %L, %L)',
    g.table_name, upsert, case when g.notify then 'notify' else 'quiet' end, notify_sql);
end
$$;
comment on function mlops._feature_group_trigger(bigint) is 'Private: (re)creates the online-sync trigger of a feature group version.';

-- Resolves a group reference 'name' (current version) or 'name@version'.
create or replace function mlops._feature_group(ref text) returns mlops.feature_group_versions
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  g mlops.feature_group_versions;
  gname text := pg_catalog.split_part(ref, '@', 1);
  gver text := nullif(pg_catalog.split_part(ref, '@', 2), '');
begin
  perform mlops._check_name(gname, 'feature group');
  if gver is not null and gver !~ '^[0-9]{1,9}$' then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid feature group version in %L', ref);
  end if;
  select * into g from mlops.feature_group_versions v
   where v.name = gname and (case when gver is null then v.is_current else v.version = gver::integer end);
  if not found then
    raise exception using errcode = '42704', message = pg_catalog.format('unknown feature group %L', ref),
      hint = 'See mlops.feature_groups.';
  end if;
  return g;
end
$$;
comment on function mlops._feature_group(text) is 'Private: registry row of a feature group reference name or name@version.';

-- Parses feature references 'group:feature' / 'group@version:feature' (a feature or a window
-- aggregate of the group) into what the online and training-set queries need. Output
-- column names are the feature names, prefixed group__ when two references share a name
-- or the name is reserved (spine columns).
create or replace function mlops._feature_refs(features text[], reserved text[] default '{}')
returns table (ord integer, ref text, group_id bigint, group_name text, group_version integer, table_name text,
               online_table text, key_column text, key_sqltype text, ttl interval, feature text, kind text, agg text,
               agg_feature text, window_size interval, out_name text)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  r record;
  g mlops.feature_group_versions;
  ent mlops.entities;
  a mlops.aggregate_features;
  seen text[] := '{}';
  names text[];
  gref text;
  gprev text;  -- group reference resolved into g (consecutive references to a group resolve it once)
  keysql text;
begin
  if features is null or pg_catalog.cardinality(features) = 0 then
    raise exception using errcode = '22023', message = 'features: give at least one ''group:feature'' reference';
  end if;
  select pg_catalog.array_agg(pg_catalog.split_part(u, ':', 2)) into names from pg_catalog.unnest(features) u;
  for r in select u.f, u.o from pg_catalog.unnest(features) with ordinality u(f, o) loop
    if r.f is null or r.f !~ '^[^:]+:[^:]+$' then
      raise exception using errcode = '22023',
        message = pg_catalog.format('invalid feature reference %L: expected ''group:feature''', r.f);
    end if;
    gref := pg_catalog.split_part(r.f, ':', 1);
    if gref is distinct from gprev then
      g := mlops._feature_group(gref);
      gprev := gref;
    end if;
    feature := pg_catalog.split_part(r.f, ':', 2);
    if feature !~ '^[a-z][a-z0-9_]{0,62}$' then
      perform mlops._check_name(feature, 'feature');  -- raises 22023 naming the argument
    end if;
    if (g.id::text || ':' || feature) = any (seen) then
      raise exception using errcode = '42701', message = pg_catalog.format('duplicate feature reference %L', r.f);
    end if;
    seen := seen || (g.id::text || ':' || feature);
    if ent.name is distinct from g.entity then
      select * into ent from mlops.entities e where e.name = g.entity;
      keysql := mlops._key_sqltype(ent.key_type);
    end if;
    ord := r.o; ref := r.f; group_id := g.id; group_name := g.name; group_version := g.version;
    table_name := g.table_name; online_table := g.online_table; key_column := ent.key_column;
    key_sqltype := keysql; ttl := g.ttl;
    kind := 'feature'; agg := null; agg_feature := null; window_size := null;
    if not exists (select from mlops.feature_defs d where d.group_id = g.id and d.name = _feature_refs.feature) then
      select * into a from mlops.aggregate_features x where x.group_id = g.id and x.name = _feature_refs.feature;
      if not found then
        raise exception using errcode = '42703',
          message = pg_catalog.format('unknown feature %s in feature group %s (version %s)', feature, g.name, g.version),
          hint = 'See mlops.features.';
      end if;
      kind := 'aggregate'; agg := a.agg; agg_feature := a.feature; window_size := a.window_size;
    end if;
    out_name := case when feature = any (reserved)
                       or (select pg_catalog.count(*) from pg_catalog.unnest(names) n where n = feature) > 1
                     then g.name || '__' || feature else feature end;
    return next;
  end loop;
end
$$;
comment on function mlops._feature_refs(text[], text[]) is 'Private: resolves ''group:feature'' references (features or window aggregates).';

-- Value expression of one feature reference for the online query: a column of the group's
-- lateral alias, vectors as real[] when the result is JSON.
create or replace function mlops._feature_value_sql(kind text, alias text, feature text, data_type text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select case when kind = 'json' and data_type = 'vector' then pg_catalog.format('%I.%I::real[]', alias, feature)
              else pg_catalog.format('%I.%I', alias, feature) end
$$;
comment on function mlops._feature_value_sql(text, text, text, text) is 'Private: SQL of a feature value in the online query (vectors as real[] for JSON).';

-- Builds the online lookup query for an entity and feature references; the Python client
-- prepares it once and get_online_features runs it. One index lookup per key and group in its
-- online table (a lateral subquery, so the TTL test runs once per group and row, not once per
-- feature) and one window aggregate per aggregate reference. TTL is enforced here, on read: a
-- row older than the group's ttl is EXPIRED and its values are null. The ttl is used as a fixed
-- duration (make_interval(secs => epoch of ttl): a day is 24 h, a month 30 days; online reads,
-- purge_expired and training sets alike): subtracting it from now() needs no time zone
-- arithmetic, which a day or month interval would cost on every row. Shapes:
--   json     $1 text[] keys -> (entity_key, "values" jsonb, status jsonb, event_ts), one row per key in order
--   columns  $1 text[] keys -> (entity_key, per feature: <name> typed and <name>__status, event_ts), in order
--   row      $1 text, one key -> the columns shape for that key (one row)
--   compact  $1 text[] keys -> (entity_key, then in feature order: a status code column named
--            #<alias> (int2: 0 MISSING, 1 PRESENT, 2 EXPIRED) wherever the group changes, followed
--            by the raw values of that group or aggregate, then event_ts), in order. Fewer and
--            cheaper columns than the columns shape (one TTL test per group and row, no per-value
--            CASE): the Python client expands it to the columns shape, a value whose code is 2
--            (EXPIRED) becomes null. Only group rows can be EXPIRED; an aggregate is 1 or 0.
--   compact_row  $1 text, one key -> the compact shape for that key (plain left joins: one
--            index probe per group, the scans project nothing)
create or replace function mlops.online_query(entity text, features text[], shape text default 'json') returns text
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  r record;
  ent mlops.entities;
  groups jsonb := '{}';  -- group id -> {alias, table, key, ttl, cols: [feature, ...]}
  g record;
  alias text;
  n integer := 0;
  dtype text;
  joins text := '';
  aggs text := '';
  times text := '';
  cols text := '';
  jvals text[] := '{}';
  jstats text[] := '{}';
  val text;
  stat text;
  keysrc text;
  i integer;
  vals_sql text := '';
  stats_sql text := '';
  compact boolean := shape in ('compact', 'compact_row');
  single boolean := shape in ('row', 'compact_row');
  ccols text := '';  -- compact: status code columns and raw values in feature order
  prev text;         -- compact: alias of the previous reference
  code text;         -- compact: status code expression of the current alias
  rawval text;       -- value expression of the current reference, TTL not applied
begin
  if shape is null or shape not in ('json', 'columns', 'row', 'compact', 'compact_row') then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid shape %L: use json, columns, row, compact or compact_row', shape);
  end if;
  select * into ent from mlops.entities e where e.name = online_query.entity;
  if not found then
    raise exception using errcode = '42704', message = pg_catalog.format('unknown entity %L', online_query.entity);
  end if;
  for r in select * from mlops._feature_refs(features) loop
    if (select v.entity from mlops.feature_group_versions v where v.id = r.group_id) <> ent.name then
      raise exception using errcode = '22023',
        message = pg_catalog.format('feature %s belongs to another entity than %s', r.ref, ent.name);
    end if;
    if r.kind = 'feature' then
      alias := groups #>> array[r.group_id::text, 'alias'];
      if alias is null then
        n := n + 1;
        alias := 'g' || n;
        groups := groups || pg_catalog.jsonb_build_object(r.group_id::text, pg_catalog.jsonb_build_object(
          'alias', alias, 'n', n, 'table', r.online_table, 'key', r.key_column,
          'ttl', pg_catalog.make_interval(secs => pg_catalog.date_part('epoch', r.ttl)), 'cols', '[]'::jsonb));
      end if;
      groups := pg_catalog.jsonb_set(groups, array[r.group_id::text, 'cols'],
                                     (groups #> array[r.group_id::text, 'cols']) || pg_catalog.to_jsonb(r.feature));
      select d.data_type into dtype from mlops.feature_defs d where d.group_id = r.group_id and d.name = r.feature;
      rawval := mlops._feature_value_sql(case when shape = 'json' then 'json' else 'column' end, alias, r.feature, dtype);
      val := pg_catalog.format('case when %I._ok then %s end', alias, rawval);
      stat := pg_catalog.format('coalesce(%I._st, ''MISSING'')', alias);
      -- event_ts is not null in online tables: null means no row (MISSING)
      code := case when r.ttl is null
                   then pg_catalog.format('case when %I.event_ts is null then 0::int2 else 1::int2 end', alias)
                   else pg_catalog.format('case when %1$I.event_ts >= pg_catalog.now() - %2$L::interval then 1::int2 '
                                          'when %1$I.event_ts is null then 0::int2 else 2::int2 end',
                                          alias, pg_catalog.make_interval(secs => pg_catalog.date_part('epoch', r.ttl))) end;
    else
      n := n + 1;
      alias := 'a' || n;
      aggs := aggs || pg_catalog.format(
        ' left join lateral (select %s(%s) as v, pg_catalog.count(*) as n from mlops_features.%I h'
        ' where h.%I = k.key and h.event_ts <= pg_catalog.now() and h.event_ts > pg_catalog.now() - %L::interval) %I on true',
        r.agg, case when r.agg_feature = '*' then '*' else pg_catalog.format('h.%I', r.agg_feature) end,
        r.table_name, r.key_column, r.window_size, alias);
      val := pg_catalog.format('%I.v', alias);
      rawval := val;
      stat := pg_catalog.format('case when %I.n > 0 then ''PRESENT'' else ''MISSING'' end', alias);
      code := pg_catalog.format('case when %I.n > 0 then 1::int2 else 0::int2 end', alias);
    end if;
    cols := cols || pg_catalog.format(', %s as %I, %s as %I', val, r.out_name, stat, r.out_name || '__status');
    if compact then
      if alias is distinct from prev then
        ccols := ccols || pg_catalog.format(', %s as %I', code, '#' || alias);
        prev := alias;
      end if;
      ccols := ccols || pg_catalog.format(', %s as %I', rawval, r.out_name);
    end if;
    jvals := jvals || pg_catalog.format('%L, %s', r.out_name, val);
    jstats := jstats || pg_catalog.format('%L, %s', r.out_name, stat);
  end loop;
  -- one lateral index lookup per group and key; _ok and _st are computed once per row found, and
  -- offset 0 keeps the subquery whole: a nested loop of index lookups, never a hash join that would
  -- read (and test the ttl of) every row of the online table
  for g in select e.value as v from pg_catalog.jsonb_each(groups) e order by (e.value ->> 'n')::integer loop
    times := times || pg_catalog.format(', %I.event_ts', g.v ->> 'alias');
    if compact and single then  -- one key: plain left joins, one index probe per group
      joins := joins || pg_catalog.format(' left join mlops_features.%I %I on %I.%I = k.key',
                                          g.v ->> 'table', g.v ->> 'alias', g.v ->> 'alias', g.v ->> 'key');
      continue;
    elsif compact then  -- keys: lateral index lookups (offset 0: never a hash join over the table)
      joins := joins || pg_catalog.format(
        ' left join lateral (select o.event_ts, %s from mlops_features.%I o where o.%I = k.key offset 0) %I on true',
        (select pg_catalog.string_agg(pg_catalog.format('o.%I', c), ', ') from pg_catalog.jsonb_array_elements_text(g.v -> 'cols') c),
        g.v ->> 'table', g.v ->> 'key', g.v ->> 'alias');
      continue;
    end if;
    joins := joins || pg_catalog.format(
      ' left join lateral (select %s, o.event_ts, %s as _ok, %s as _st from mlops_features.%I o where o.%I = k.key offset 0) %I on true',
      (select pg_catalog.string_agg(pg_catalog.format('o.%I', c), ', ') from pg_catalog.jsonb_array_elements_text(g.v -> 'cols') c),
      case when g.v ->> 'ttl' is null then 'true'
           else pg_catalog.format('(o.event_ts >= pg_catalog.now() - %L::interval) is true', g.v ->> 'ttl') end,
      case when g.v ->> 'ttl' is null then '''PRESENT''::text'
           else pg_catalog.format('case when o.event_ts >= pg_catalog.now() - %L::interval then ''PRESENT'' else ''EXPIRED'' end',
                                  g.v ->> 'ttl') end,
      g.v ->> 'table', g.v ->> 'key', g.v ->> 'alias');
  end loop;
  joins := joins || aggs;
  times := case when times = '' then 'null::timestamptz' else 'least(' || pg_catalog.substr(times, 3) || ')' end;
  keysrc := case when single then pg_catalog.format('(select $1::text::%s as key) k', mlops._key_sqltype(ent.key_type))
                 else pg_catalog.format('pg_catalog.unnest($1::text[]::%s[]) with ordinality k(key, ord)',
                                        mlops._key_sqltype(ent.key_type)) end;
  if shape <> 'json' then
    return pg_catalog.format('select k.key::text as entity_key%s, %s as event_ts from %s%s%s',
                             case when compact then ccols else cols end, times, keysrc, joins,
                             case when single then '' else ' order by k.ord' end);
  end if;
  -- json: jsonb_build_object takes at most 100 arguments: chunks of 50 features
  i := 1;
  while i <= pg_catalog.cardinality(jvals) loop
    vals_sql := vals_sql || case when i > 1 then ' || ' else '' end
                || pg_catalog.format('pg_catalog.jsonb_build_object(%s)', pg_catalog.array_to_string(jvals[i:i + 49], ', '));
    stats_sql := stats_sql || case when i > 1 then ' || ' else '' end
                 || pg_catalog.format('pg_catalog.jsonb_build_object(%s)', pg_catalog.array_to_string(jstats[i:i + 49], ', '));
    i := i + 50;
  end loop;
  return pg_catalog.format('select k.key::text as entity_key, %s as "values", %s as status, %s as event_ts from %s%s order by k.ord',
                           vals_sql, stats_sql, times, keysrc, joins);
end
$$;
comment on function mlops.online_query(text, text[], text) is
  'SQL of the online lookup for (entity, features ''group:feature''), one index lookup per group with TTL enforced on read. Shape json: $1 text[] keys -> (entity_key, values jsonb, status jsonb, event_ts); shape columns: $1 text[] keys -> (entity_key, one typed column and one <name>__status column per feature, event_ts), rows in key order; shape row: $1 text, one key -> the columns shape; shapes compact ($1 text[]) and compact_row ($1 text): entity_key, then in feature order a status code column #<alias> int2 (0 MISSING, 1 PRESENT, 2 EXPIRED: read its values as null) each time the group changes followed by the raw values, then event_ts. Clients prepare it once (and re-fetch it on NOTIFY mlops_feature_groups).';

-- Online lookup: one row per key (in the given order) with feature values, a status per
-- feature (PRESENT, EXPIRED past the group's ttl, MISSING) and the oldest event_ts among the
-- groups read. TTL is enforced on read, whether or not purge_expired ran.
create or replace function mlops.get_online_features(entity text, keys text[], features text[])
returns table (entity_key text, "values" jsonb, status jsonb, event_ts timestamptz)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
begin
  if keys is null then
    raise exception using errcode = '22023', message = 'keys must not be null';
  end if;
  return query execute mlops.online_query(entity, features, 'json') using keys;
end
$$;
comment on function mlops.get_online_features(text, text[], text[]) is
  'Online feature lookup: entity, keys text[], features ''group:feature'' text[] -> one row per key with values jsonb, status jsonb (PRESENT/EXPIRED/MISSING per feature, TTL enforced on read) and event_ts.';

-- Deletes online rows past their group's ttl (reads already ignore them); returns how many.
create or replace function mlops.purge_expired() returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  g mlops.feature_group_versions;
  n bigint;
  total bigint := 0;
begin
  for g in select * from mlops.feature_group_versions v where v.ttl is not null order by v.id loop
    execute pg_catalog.format('delete from mlops_features.%I where event_ts < pg_catalog.now() - %L::interval',
                              g.online_table, pg_catalog.make_interval(secs => pg_catalog.date_part('epoch', g.ttl)));
    get diagnostics n = row_count;
    total := total + n;
  end loop;
  return total;
end
$$;
comment on function mlops.purge_expired() is 'Deletes online rows older than their group''s ttl in every group version; returns the number deleted.';

-- Convenience write: rows is a json array of objects {<key column>, event_ts, <feature>...}.
-- One set-based insert; on failure, re-checks each feature to name the offending one.
create or replace function mlops.write_features("group" text, rows jsonb) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  g mlops.feature_group_versions;
  keycol text;
  cols text;
  bad text;
  d record;
  n bigint;
  msg text;
  state text;
begin
  g := mlops._feature_group("group");
  if rows is null or pg_catalog.jsonb_typeof(rows) <> 'array' then
    raise exception using errcode = '22023', message = pg_catalog.format('rows for feature group %s must be a json array of objects', g.name);
  end if;
  if exists (select from pg_catalog.jsonb_array_elements(rows) r where pg_catalog.jsonb_typeof(r) <> 'object') then
    raise exception using errcode = '22023', message = pg_catalog.format('rows for feature group %s must be a json array of objects', g.name);
  end if;
  select e.key_column into keycol from mlops.entities e where e.name = g.entity;
  select k into bad from pg_catalog.jsonb_array_elements(rows) r, pg_catalog.jsonb_object_keys(r) k
   where k not in (keycol, 'event_ts', 'created_at')
     and not exists (select from mlops.feature_defs x where x.group_id = g.id and x.name = k)
   limit 1;
  if bad is not null then
    raise exception using errcode = '42703',
      message = pg_catalog.format('unknown feature %L in rows for feature group %s (version %s)', bad, g.name, g.version);
  end if;
  select pg_catalog.string_agg(pg_catalog.format(', %I', x.name), '' order by x.position) into cols
    from mlops.feature_defs x where x.group_id = g.id;
  begin
    execute pg_catalog.format(
      'insert into mlops_features.%1$I (%2$I, event_ts, created_at%3$s) '
      'select %2$I, event_ts, coalesce(created_at, pg_catalog.now())%3$s '
      'from pg_catalog.jsonb_populate_recordset(null::mlops_features.%1$I, $1)', g.table_name, keycol, cols)
      using rows;
    get diagnostics n = row_count;
  exception when data_exception or not_null_violation or check_violation then
    get stacked diagnostics msg = message_text, state = returned_sqlstate;
    for d in select x.name, x.data_type, x.dims from mlops.feature_defs x
              where x.group_id = g.id and x.data_type <> 'jsonb' order by x.position loop
      begin
        execute pg_catalog.format('select pg_catalog.count((r ->> %L)::%s) from pg_catalog.jsonb_array_elements($1) r',
                                  d.name, mlops._feature_sqltype(pg_catalog.jsonb_build_object('type', d.data_type, 'dims', d.dims)))
          using rows;
      exception when data_exception then
        get stacked diagnostics msg = message_text, state = returned_sqlstate;
        raise exception using errcode = state,
          message = pg_catalog.format('feature group %s, feature %s (%s): %s', g.name, d.name, d.data_type, msg);
      end;
    end loop;
    raise exception using errcode = state, message = pg_catalog.format('feature group %s: %s', g.name, msg);
  end;
  return n;
end
$$;
comment on function mlops.write_features(text, jsonb) is
  'Inserts rows (json array of {<key column>, event_ts, <feature>: value}) into a feature group''s current version; returns the row count. Unknown features, wrong types, wrong vector dimensions and rule violations raise an error naming group and feature; nothing is written.';

-- Point-in-time training set: materializes mlops_features.<name> with every spine row and,
-- per feature group, the newest row with event_ts <= the spine timestamp and within the
-- group's ttl (index-backed LATERAL ... order by event_ts desc limit 1 per group, never a
-- cross join); window aggregates over (ts - window, ts]. Records lineage in
-- mlops.training_sets. spine: a schema-qualified table/view name or a query (select/with/values,
-- schema-qualified names: search_path is pinned) with the entity key column(s) and a timestamp column (timestamp_column, else event_ts, ts, or the
-- only timestamp column).
create or replace function mlops.create_training_set(name text, spine text, features text[],
                                                     timestamp_column text default null) returns text
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  spine_sql text;
  spine_cols text[];
  tscol text := timestamp_column;
  tstype text;
  r record;
  aliases jsonb := '{}';
  alias text;
  n integer := 0;
  joins text := '';
  cols text := '';
  sel jsonb := '{}';
  groups jsonb := '{}';
  ts_expr text;
  n_rows bigint;
  hash_sum numeric;
begin
  perform mlops._check_name(create_training_set.name, 'training set name');
  if exists (select from mlops.training_sets t where t.name = create_training_set.name)
     or pg_catalog.to_regclass(pg_catalog.format('mlops_features.%I', create_training_set.name)) is not null then
    raise exception using errcode = '42P07',
      message = pg_catalog.format('training set name %s is taken (mlops.training_sets or a table in mlops_features)', create_training_set.name);
  end if;
  if spine is null or pg_catalog.btrim(spine) = '' then
    raise exception using errcode = '22023', message = 'spine must be a table name or a query';
  end if;
  if spine ~* '^\s*\(?\s*(select|with|values|table)\M' then
    spine_sql := pg_catalog.format('select * from (%s) s', spine);
  else
    if pg_catalog.to_regclass(spine) is null then
      raise exception using errcode = '42P01', message = pg_catalog.format('spine %L is neither a query nor an existing table', spine),
        hint = 'Schema-qualify tables (public.my_spine), in spine queries too: pgmlops functions run with search_path = pg_catalog.';
    end if;
    spine_sql := pg_catalog.format('select * from %s', pg_catalog.to_regclass(spine)::text);
  end if;
  if pg_catalog.to_regclass('pg_temp._mlops_spine') is not null then
    drop table pg_temp._mlops_spine;
  end if;
  execute 'create temp table _mlops_spine as ' || spine_sql;
  select pg_catalog.array_agg(a.attname::text order by a.attnum) into spine_cols
    from pg_catalog.pg_attribute a where a.attrelid = 'pg_temp._mlops_spine'::regclass and a.attnum > 0 and not a.attisdropped;
  if tscol is null then
    select a.attname into tscol from pg_catalog.pg_attribute a
     where a.attrelid = 'pg_temp._mlops_spine'::regclass and a.attnum > 0 and not a.attisdropped
       and a.atttypid in ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
     order by (a.attname = 'event_ts') desc, (a.attname = 'ts') desc, a.attnum
     limit 1;
    if tscol is null then
      raise exception using errcode = '42703', message = 'spine has no timestamp column (timestamptz, timestamp or date)',
        hint = 'Add an event_ts column or pass timestamp_column => ...';
    end if;
  end if;
  select a.atttypid::regtype::text into tstype from pg_catalog.pg_attribute a
   where a.attrelid = 'pg_temp._mlops_spine'::regclass and a.attname = tscol and a.attnum > 0 and not a.attisdropped;
  if tstype is null then
    raise exception using errcode = '42703', message = pg_catalog.format('spine has no timestamp column %I', tscol);
  elsif tstype not in ('timestamp with time zone', 'timestamp without time zone', 'date') then
    raise exception using errcode = '42804', message = pg_catalog.format('spine timestamp column %I has type %s, not a timestamp', tscol, tstype);
  end if;
  ts_expr := pg_catalog.format('s.%I::timestamptz', tscol);
  for r in select * from mlops._feature_refs(features, spine_cols) loop
    if not r.key_column = any (spine_cols) then
      raise exception using errcode = '42703',
        message = pg_catalog.format('spine has no column %I (entity key of feature group %s)', r.key_column, r.group_name);
    end if;
    groups := groups || pg_catalog.jsonb_build_object(r.group_name, r.group_version);
    if r.kind = 'feature' then
      alias := aliases ->> r.group_id::text;
      if alias is null then
        n := n + 1;
        alias := 'g' || n;
        aliases := aliases || pg_catalog.jsonb_build_object(r.group_id::text, alias);
        sel := sel || pg_catalog.jsonb_build_object(alias, pg_catalog.jsonb_build_object(
          'table', r.table_name, 'key', r.key_column, 'type', r.key_sqltype,
          'ttl', pg_catalog.make_interval(secs => pg_catalog.date_part('epoch', r.ttl)), 'cols', '[]'::jsonb));
      end if;
      sel := pg_catalog.jsonb_set(sel, array[alias, 'cols'], (sel #> array[alias, 'cols']) || pg_catalog.to_jsonb(r.feature));
      cols := cols || pg_catalog.format(', %I.%I as %I', alias, r.feature, r.out_name);
    else
      n := n + 1;
      alias := 'a' || n;
      joins := joins || pg_catalog.format(
        ' left join lateral (select %s(%s) as v from mlops_features.%I h'
        ' where h.%I = s.%I::%s and h.event_ts <= %s and h.event_ts > %s - %L::interval) %I on true',
        r.agg, case when r.agg_feature = '*' then '*' else pg_catalog.format('h.%I', r.agg_feature) end,
        r.table_name, r.key_column, r.key_column, r.key_sqltype, ts_expr, ts_expr, r.window_size, alias);
      cols := cols || pg_catalog.format(', %s as %I',
        case when r.agg = 'count' then pg_catalog.format('coalesce(%I.v, 0)', alias) else pg_catalog.format('%I.v', alias) end,
        r.out_name);
    end if;
  end loop;
  for r in select e.key as alias, e.value as g from pg_catalog.jsonb_each(sel) e loop
    joins := pg_catalog.format(
      ' left join lateral (select %s from mlops_features.%I h where h.%I = s.%I::%s and h.event_ts <= %s%s'
      ' order by h.event_ts desc, h.created_at desc limit 1) %I on true',
      (select pg_catalog.string_agg(pg_catalog.format('h.%I', c), ', ') from pg_catalog.jsonb_array_elements_text(r.g -> 'cols') c),
      r.g ->> 'table', r.g ->> 'key', r.g ->> 'key', r.g ->> 'type', ts_expr,
      case when r.g ->> 'ttl' is null then ''
           else pg_catalog.format(' and h.event_ts >= %s - %L::interval', ts_expr, r.g ->> 'ttl') end,
      r.alias) || joins;
  end loop;
  execute pg_catalog.format('create table mlops_features.%I as select s.*%s from pg_temp._mlops_spine s%s',
                            create_training_set.name, cols, joins);
  drop table pg_temp._mlops_spine;
  execute pg_catalog.format('select pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.hashtextextended(t::text, 0)::numeric), 0) '
                            'from mlops_features.%I t', create_training_set.name) into n_rows, hash_sum;
  insert into mlops.training_sets (name, table_name, spine, timestamp_column, features, group_versions, row_count, content_hash)
  values (create_training_set.name, create_training_set.name, spine, tscol, features, groups, n_rows,
          pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(n_rows::text || ':' || hash_sum::text, 'UTF8')), 'hex'));
  execute pg_catalog.format('grant select on mlops_features.%I to mlops_reader', create_training_set.name);
  execute pg_catalog.format('comment on table mlops_features.%I is %L', create_training_set.name,
    pg_catalog.format('Point-in-time training set %s (features %s, groups %s); lineage in mlops.training_sets.',
                      create_training_set.name, features::text, groups::text));
  return pg_catalog.format('mlops_features.%I', create_training_set.name);
end
$$;
comment on function mlops.create_training_set(text, text, text[], text) is
  'Materializes a point-in-time correct training set mlops_features.<name>: spine (table or query with entity key + timestamp) + per group the newest row with event_ts <= ts within ttl, window aggregates over (ts - window, ts]. Records lineage (group versions, spine, row count, content hash) in mlops.training_sets; returns the table name.';

-- Window aggregate over a group's history: count/sum/avg/min/max of a feature over the
-- window ending at the read time (online: now; training sets: the spine timestamp, window
-- (ts - window_size, ts]), so it is point-in-time correct. Referenced as 'group:name'.
create or replace function mlops.create_aggregate_feature("group" text, name text, feature text, agg text,
                                                          window_size interval) returns text
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  g mlops.feature_group_versions;
  dtype text;
begin
  g := mlops._feature_group("group");
  perform mlops._check_name(create_aggregate_feature.name, 'aggregate name');
  if agg is null or agg not in ('count', 'sum', 'avg', 'min', 'max') then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid agg %L: use count, sum, avg, min or max', agg);
  end if;
  if window_size is null or window_size <= interval '0' then
    raise exception using errcode = '22023', message = pg_catalog.format('window_size must be a positive interval, got %s', window_size);
  end if;
  if exists (select from mlops.feature_defs d where d.group_id = g.id and d.name = create_aggregate_feature.name)
     or exists (select from mlops.aggregate_features a where a.group_id = g.id and a.name = create_aggregate_feature.name) then
    raise exception using errcode = '42701',
      message = pg_catalog.format('feature group %s already has a feature named %s', g.name, create_aggregate_feature.name);
  end if;
  if feature = '*' and agg = 'count' then
    null;
  else
    select d.data_type into dtype from mlops.feature_defs d where d.group_id = g.id and d.name = feature;
    if dtype is null then
      raise exception using errcode = '42703', message = pg_catalog.format('unknown feature %L in feature group %s', feature, g.name);
    end if;
    if agg <> 'count' and dtype not in ('int8', 'int4', 'float8', 'float4') then
      raise exception using errcode = '42804', message = pg_catalog.format('%s needs a numeric feature; %s is %s', agg, feature, dtype);
    end if;
  end if;
  insert into mlops.aggregate_features (group_id, name, feature, agg, window_size)
  values (g.id, create_aggregate_feature.name, feature, agg, window_size);
  return g.name || ':' || create_aggregate_feature.name;
end
$$;
comment on function mlops.create_aggregate_feature(text, text, text, text, interval) is
  'Defines a window aggregate (agg count|sum|avg|min|max of feature, or count of *) over window_size (e.g. 1 hour, 24 hours, 7 days, 30 days) on a group; read as ''group:name'' online (window ending now) and in training sets (window ending at the spine timestamp). Returns the reference.';

-- Newest event_ts of a group version (max over its online table, index-backed).
create or replace function mlops._feature_newest_event(online_table text) returns timestamptz
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  newest timestamptz;
begin
  execute pg_catalog.format('select pg_catalog.max(event_ts) from mlops_features.%I', online_table) into newest;
  return newest;
end
$$;
comment on function mlops._feature_newest_event(text) is 'Private: newest event_ts in a feature group''s online table.';

create or replace view mlops.feature_groups as
  select g.created_at as time, g.name as group_name, g.version, g.is_current, g.entity, e.key_column,
         e.key_type, g.table_name, g.online_table,
         pg_catalog.date_part('epoch', g.ttl)::float8 as ttl_seconds,
         pg_catalog.date_part('epoch', coalesce(g.freshness_sla, g.ttl))::float8 as sla_seconds,
         (select pg_catalog.count(*) from mlops.feature_defs d where d.group_id = g.id)::integer as feature_count,
         g.notify, g.description, g.source, g.created_by
    from mlops.feature_group_versions g join mlops.entities e on e.name = g.entity;
comment on view mlops.feature_groups is 'BI view: one row per feature group version (current and older).';
comment on column mlops.feature_groups.time is 'When this version was created.';
comment on column mlops.feature_groups.group_name is 'Feature group name.';
comment on column mlops.feature_groups.version is 'Version number; a schema change creates a new one.';
comment on column mlops.feature_groups.is_current is 'True for the version reads and writes by name use.';
comment on column mlops.feature_groups.entity is 'Entity the rows are keyed by.';
comment on column mlops.feature_groups.key_column is 'Entity key column in the group tables.';
comment on column mlops.feature_groups.key_type is 'Type of the entity key.';
comment on column mlops.feature_groups.table_name is 'History table in schema mlops_features.';
comment on column mlops.feature_groups.online_table is 'Online table (newest row per entity) in schema mlops_features.';
comment on column mlops.feature_groups.ttl_seconds is 'Time to live of feature values in seconds; empty = never expire.';
comment on column mlops.feature_groups.sla_seconds is 'Freshness SLA in seconds (defaults to the ttl); empty = none.';
comment on column mlops.feature_groups.feature_count is 'Number of features in this version.';
comment on column mlops.feature_groups.notify is 'Whether writes send NOTIFY mlops_features.';
comment on column mlops.feature_groups.description is 'Free text.';
comment on column mlops.feature_groups.source is 'Query or table the group is derived from, if given.';
comment on column mlops.feature_groups.created_by is 'Role that created the version.';

create or replace view mlops.features as
  select g.created_at as time, g.name as group_name, g.version, g.is_current, d.name as feature, 'feature'::text as kind,
         d.position, case when d.data_type = 'vector' then pg_catalog.format('vector(%s)', d.dims) else d.data_type end as data_type,
         d.not_null, d.min_value, d.max_value,
         (select pg_catalog.string_agg(a, ', ') from pg_catalog.jsonb_array_elements_text(d.allowed) a) as allowed_values,
         null::text as aggregate, null::float8 as window_seconds
    from mlops.feature_group_versions g join mlops.feature_defs d on d.group_id = g.id
  union all
  select a.created_at, g.name, g.version, g.is_current, a.name, 'aggregate', null::integer,
         case when a.agg = 'count' then 'int8' else 'float8' end, false, null, null, null,
         pg_catalog.format('%s(%s)', a.agg, a.feature), pg_catalog.date_part('epoch', a.window_size)::float8
    from mlops.feature_group_versions g join mlops.aggregate_features a on a.group_id = g.id;
comment on view mlops.features is 'BI view: one row per feature (and window aggregate) of every feature group version, with type and rules.';
comment on column mlops.features.time is 'When the feature (its group version, or the aggregate) was created.';
comment on column mlops.features.group_name is 'Feature group name.';
comment on column mlops.features.version is 'Feature group version.';
comment on column mlops.features.is_current is 'True when the group version is current.';
comment on column mlops.features.feature is 'Feature name (column name in the group tables, or aggregate name).';
comment on column mlops.features.kind is 'feature or aggregate.';
comment on column mlops.features.position is 'Column position among the group''s features; empty for aggregates.';
comment on column mlops.features.data_type is 'int8, int4, float8, float4, bool, text, jsonb, timestamptz or vector(N).';
comment on column mlops.features.not_null is 'Rule: values must not be null.';
comment on column mlops.features.min_value is 'Rule: smallest allowed value; empty = none.';
comment on column mlops.features.max_value is 'Rule: largest allowed value; empty = none.';
comment on column mlops.features.allowed_values is 'Rule: comma-separated allowed values; empty = any.';
comment on column mlops.features.aggregate is 'For aggregates: the function and source feature, e.g. avg(amount).';
comment on column mlops.features.window_seconds is 'For aggregates: window length in seconds.';

create or replace view mlops.feature_freshness as
  select pg_catalog.now() as time, x.group_name, x.version, x.newest_event,
         pg_catalog.date_part('epoch', pg_catalog.now() - x.newest_event)::float8 as lag_seconds, x.sla_seconds,
         x.sla_seconds is not null
           and (x.newest_event is null or pg_catalog.date_part('epoch', pg_catalog.now() - x.newest_event) > x.sla_seconds) as is_stale
    from (select g.name as group_name, g.version, mlops._feature_newest_event(g.online_table) as newest_event,
                 pg_catalog.date_part('epoch', coalesce(g.freshness_sla, g.ttl))::float8 as sla_seconds
            from mlops.feature_group_versions g where g.is_current) x;
comment on view mlops.feature_freshness is 'BI view: freshness of every current feature group (newest event, lag, SLA, stale flag).';
comment on column mlops.feature_freshness.time is 'When the freshness was measured (now).';
comment on column mlops.feature_freshness.group_name is 'Feature group name.';
comment on column mlops.feature_freshness.version is 'Current version of the group.';
comment on column mlops.feature_freshness.newest_event is 'Newest event_ts written to the group; empty when it has no rows.';
comment on column mlops.feature_freshness.lag_seconds is 'Seconds since the newest event.';
comment on column mlops.feature_freshness.sla_seconds is 'Freshness SLA in seconds (freshness_sla, else ttl); empty = none.';
comment on column mlops.feature_freshness.is_stale is 'True when the lag exceeds the SLA or the group has no rows.';

create or replace view mlops.training_set_lineage as
  select t.created_at as time, t.name as training_set, t.table_name, g.key as group_name, g.value::text::integer as group_version,
         t.row_count, t.content_hash, t.timestamp_column, t.spine, t.created_by
    from mlops.training_sets t cross join lateral pg_catalog.jsonb_each(t.group_versions) g;
comment on view mlops.training_set_lineage is 'BI view: training sets and the feature group versions they were built from (one row per set and group).';
comment on column mlops.training_set_lineage.time is 'When the training set was materialized.';
comment on column mlops.training_set_lineage.training_set is 'Training set name.';
comment on column mlops.training_set_lineage.table_name is 'Table in schema mlops_features holding it.';
comment on column mlops.training_set_lineage.group_name is 'Feature group read.';
comment on column mlops.training_set_lineage.group_version is 'Version of the feature group read.';
comment on column mlops.training_set_lineage.row_count is 'Rows in the training set (= spine rows).';
comment on column mlops.training_set_lineage.content_hash is 'sha256 over the row count and an order-independent sum of row hashes.';
comment on column mlops.training_set_lineage.timestamp_column is 'Spine column used as the point in time.';
comment on column mlops.training_set_lineage.spine is 'Spine table name or query.';
comment on column mlops.training_set_lineage.created_by is 'Role that built it.';

-- Raises a feature_freshness alert for each current group past its SLA (freshness_sla,
-- else ttl) and resolves the alert of groups that recovered. SECURITY DEFINER: writers
-- may run it but may not write mlops.alerts directly.
create or replace function mlops.check_freshness()
returns table (group_name text, newest_event timestamptz, lag_seconds float8, sla_seconds float8, is_stale boolean, alert_id bigint)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  r record;
begin
  for r in select * from mlops.feature_freshness f order by f.group_name loop
    group_name := r.group_name; newest_event := r.newest_event; lag_seconds := r.lag_seconds;
    sla_seconds := r.sla_seconds; is_stale := r.is_stale; alert_id := null;
    if r.is_stale then
      alert_id := mlops._raise_alert('feature_freshness', r.group_name, 'warning',
        case when r.newest_event is null then pg_catalog.format('feature group %s has no rows', r.group_name)
             else pg_catalog.format('feature group %s is stale: newest event %s is %s s old (SLA %s s)', r.group_name,
                                    r.newest_event, pg_catalog.round(r.lag_seconds::numeric, 1), r.sla_seconds) end,
        pg_catalog.jsonb_build_object('group', r.group_name, 'version', r.version, 'newest_event', r.newest_event,
                                      'lag_seconds', r.lag_seconds, 'sla_seconds', r.sla_seconds));
    elsif r.sla_seconds is not null then
      perform mlops.resolve_alerts('feature_freshness', r.group_name);
    end if;
    return next;
  end loop;
end
$$;
comment on function mlops.check_freshness() is
  'Checks every current feature group against its SLA: raises (or refreshes) a feature_freshness alert (mlops.alerts + NOTIFY mlops_feature_freshness) for stale groups and resolves it for fresh ones. Returns one row per group.';

-- Rule report over existing data of a group ('name' or 'name@version'): per feature the
-- null count and rate, and violations of each rule (not_null, min, max, allowed, finite).
create or replace function mlops.validate_features("group" text)
returns table (feature text, rule text, row_count bigint, violations bigint, violation_rate float8)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  g mlops.feature_group_versions;
  d mlops.feature_defs;
  aggs text := '';
  vals text := '';
  i integer := 0;
  expr text;
  rule_name text;
begin
  g := mlops._feature_group("group");
  for d in select * from mlops.feature_defs x where x.group_id = g.id order by x.position loop
    for rule_name, expr in
      select 'null', pg_catalog.format('%I is null', d.name)
      union all select 'not_null', pg_catalog.format('%I is null', d.name) where d.not_null
      union all select 'min', pg_catalog.format('%I < %s', d.name, d.min_value) where d.min_value is not null
      union all select 'max', pg_catalog.format('%I > %s', d.name, d.max_value) where d.max_value is not null
      union all select 'allowed', pg_catalog.format('not (%I::text = any (%L::text[]))', d.name,
                                                    (select pg_catalog.array_agg(a) from pg_catalog.jsonb_array_elements_text(d.allowed) a))
                 where d.allowed is not null
      union all select 'finite', pg_catalog.format('%I in (''NaN'', ''Infinity'', ''-Infinity'')', d.name)
                 where d.data_type in ('float8', 'float4')
    loop
      i := i + 1;
      aggs := aggs || pg_catalog.format(', pg_catalog.count(*) filter (where %s) as c%s', expr, i);
      vals := vals || pg_catalog.format('%s(%L, %L, c%s)', case when i > 1 then ', ' else '' end, d.name, rule_name, i);
    end loop;
  end loop;
  return query execute pg_catalog.format(
    'select v.f, v.r, t.n, v.c, case when t.n > 0 then v.c::float8 / t.n end '
    'from (select pg_catalog.count(*) as n%s from mlops_features.%I) t '
    'cross join lateral (values %s) v(f, r, c)', aggs, g.table_name, vals);
end
$$;
comment on function mlops.validate_features(text) is
  'Rule report over the existing rows of a feature group (name or name@version): per feature the null count/rate and violations of not_null, min, max, allowed and finite (NaN/Infinity).';
