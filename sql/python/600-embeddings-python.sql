-- In-database embeddings (pgmlops_python): sentence-transformers runs in the server's Python.
-- The server finds sentence-transformers, torch and the model package through the GUC
-- pgmlops.site_packages (e.g. ALTER DATABASE app SET pgmlops.site_packages =
-- '/srv/venv/lib/python3.11/site-packages'); every file there must be readable by the
-- server's OS user. HF_HUB_OFFLINE=1 is forced: models are never downloaded.

-- Encodes texts with a model version (no cache: callers go through embed_batch). The
-- model is loaded once per session (GD). Texts longer than max_seq_length tokens are
-- truncated by the model.
create or replace function mlops._encode(model_version_id bigint, texts text[]) returns vector[]
language plpython3u volatile set search_path from current
as $$
import os
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
models = GD.setdefault("pgmlops_embedding_models", {})
model = models.get(model_version_id)
if model is None:
    plpy.execute("select mlops._py_setup()")
    row = plpy.execute(plpy.prepare(
        "select v.params->>'package' as package, (v.params->>'normalize')::boolean as normalize, "
        "(v.params->>'max_seq_length')::integer as max_len from mlops.model_versions v where v.id = $1",
        ["bigint"]), [model_version_id])
    if not row:
        plpy.error("unknown model version %s" % model_version_id, sqlstate="42704")
    package = row[0]["package"]
    module_name = package.replace("-", "_").replace(".", "_")
    import importlib
    try:
        pkg = importlib.import_module(module_name)
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        plpy.error("model package missing: cannot import %s or sentence_transformers (%s)" % (module_name, exc),
                   hint="pip install %s sentence-transformers into a venv and set pgmlops.site_packages to its "
                        "site-packages directory (readable by the server user)" % package,
                        sqlstate="58P01")
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    path = pkg.get_model_path() if hasattr(pkg, "get_model_path") else pkg.MODEL_DIR
    model = SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = row[0]["max_len"]
    model._pgmlops_normalize = bool(row[0]["normalize"])
    models[model_version_id] = model
if not texts:
    return []
emb = model.encode(list(texts), batch_size=32, normalize_embeddings=model._pgmlops_normalize,
                   convert_to_numpy=True, show_progress_bar=False)
return ["[" + ",".join(repr(float(x)) for x in v) + "]" for v in emb]
$$;
comment on function mlops._encode(bigint, text[]) is
  'Private: encodes texts with an embedding model version in the server Python (model cached per session; no cache lookup).';

-- Embeds a batch of texts through the cache: hits are returned as stored, misses are
-- encoded once (duplicates share one encode) and stored.
create or replace function mlops.embed_batch(texts text[], model text default 'all_minilm_l6_v2')
returns table (ordinality integer, embedding vector)
language plpgsql volatile set search_path from current
as $$
declare
  vid bigint := mlops._embedding_model(model);
  miss_texts text[];
  miss_hashes text[];
begin
  perform mlops._check_texts(texts, 'texts');
  select pg_catalog.array_agg(x.txt order by x.first), pg_catalog.array_agg(x.sha order by x.first)
    into miss_texts, miss_hashes
    from (select min(l.ordinality) as first, l.content_sha256 as sha, min(texts[l.ordinality]) as txt
            from mlops.embedding_cache_lookup(texts, model) l where l.embedding is null
           group by l.content_sha256) x;
  if miss_texts is not null then
    perform mlops.embedding_cache_store(miss_hashes, mlops._encode(vid, miss_texts), model);
  end if;
  return query select l.ordinality, l.embedding from mlops.embedding_cache_lookup(texts, model) l;
end
$$;
comment on function mlops.embed_batch(text[], text) is
  'Embeds texts in the database with a registered model (default all_minilm_l6_v2), cache first; one row per input position.';

-- One text's embedding through mlops.embed_batch (same cache and model resolution).
create or replace function mlops.embed(content text, model text default 'all_minilm_l6_v2') returns vector
language sql volatile set search_path from current
as $$ select b.embedding from mlops.embed_batch(array[content], model) b $$;
comment on function mlops.embed(text, text) is
  'Embedding of one text (cache first). Texts longer than the model''s max_seq_length tokens (256 for all_minilm_l6_v2) are truncated.';

-- One worker step in the database: claims a batch (SKIP LOCKED), encodes cache misses,
-- writes the destination and dequeues, all in the caller's transaction. Encoder errors
-- are recorded on the rows (retried with backoff, then listed in mlops.embedding_errors).
-- Returns the number of rows embedded.
create or replace function mlops.embedding_sync_step(sync text default null, batch_size integer default 32)
returns integer
language plpgsql volatile set search_path from current
as $$
declare
  ids bigint[];
  mvs bigint[];
  contents text[];
  hashes text[];
  hits boolean[];
  mv bigint;
  miss_texts text[];
  miss_hashes text[];
  err text;
begin
  select pg_catalog.array_agg(c.queue_id order by c.queue_id), pg_catalog.array_agg(c.model_version_id order by c.queue_id),
         pg_catalog.array_agg(c.content order by c.queue_id), pg_catalog.array_agg(c.content_sha256 order by c.queue_id),
         pg_catalog.array_agg(c.embedding is not null order by c.queue_id)
    into ids, mvs, contents, hashes, hits
    from mlops._claim_embedding_batch(sync, batch_size) c;
  if ids is null then
    return 0;
  end if;
  for mv, miss_texts, miss_hashes in
    select u.mv, pg_catalog.array_agg(u.txt), pg_catalog.array_agg(u.sha)
      from (select distinct on (x.mv, x.sha) x.mv, x.txt, x.sha
              from unnest(mvs, contents, hashes, hits) x(mv, txt, sha, hit)
             where not x.hit and x.txt is not null and pg_catalog.btrim(x.txt, E' \t\r\n') <> '') u
     group by u.mv
  loop
    begin
      insert into mlops.embedding_cache (model_version_id, content_sha256, embedding)
      select mv, t.sha, t.e from unnest(miss_hashes, mlops._encode(mv, miss_texts)) t(sha, e)
      on conflict (model_version_id, content_sha256)
      do update set embedding = excluded.embedding, created_at = pg_catalog.now(),
                    expires_at = pg_catalog.now() + interval '7 days';
    exception when others then
      err := pg_catalog.left(sqlerrm, 500);
    end;
  end loop;
  return mlops._apply_embedding_batch(ids, err);
end
$$;
comment on function mlops.embedding_sync_step(text, integer) is
  'Worker step in the database: embeds up to batch_size queued rows of a sync (or of any sync when NULL) with SKIP LOCKED; returns rows embedded.';

-- Semantic search by text: embeds the query with the sync's current model (cache first).
create or replace function mlops.similar(sync text, query text, k integer default 10, filter jsonb default null)
returns table (key jsonb, distance float8, similarity float8, metadata jsonb)
language plpgsql volatile set search_path from current
as $$
declare
  s mlops.embedding_syncs := mlops._sync(sync);
  model text := (select m.name || '@' || v.version::text from mlops.model_versions v join mlops.models m on m.id = v.model_id
                  where v.id = s.model_version_id);
begin
  return query select * from mlops.similar(sync, mlops.embed(query, model), k, filter);
end
$$;
comment on function mlops.similar(text, text, integer, jsonb) is
  'k nearest rows of a sync to a query text (embedded in the database with the sync''s model), filtered by metadata containment.';

grant execute on function mlops.embed(text, text), mlops.embed_batch(text[], text),
  mlops.similar(text, text, integer, jsonb) to mlops_reader;
grant execute on function mlops._encode(bigint, text[]) to mlops_reader;
grant execute on function mlops.embedding_sync_step(text, integer) to mlops_writer;
