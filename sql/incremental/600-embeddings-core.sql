-- Embeddings: cache, sync (vectorizer) definitions, work queue. Embedding models are
-- registry models (task 'embedding', flavor 'sentence_transformers'); their dimension,
-- normalization and package live in model_versions.params.

-- Cache of every embedding computed by any path (client, mlops.embed, sync workers).
-- Logged on purpose: recomputing costs seconds per thousand texts.
create table mlops.embedding_cache (
  model_version_id bigint not null references mlops.model_versions (id),
  content_sha256 text not null check (content_sha256 ~ '^[0-9a-f]{64}$'),
  embedding vector not null,
  created_at timestamptz not null default pg_catalog.now(),
  expires_at timestamptz not null default pg_catalog.now() + interval '7 days',
  primary key (model_version_id, content_sha256)
);
comment on table mlops.embedding_cache is
  'Embeddings keyed by (model version, sha256 of the UTF-8 text); every generation path reads it first. Logged table.';
create index embedding_cache_expires on mlops.embedding_cache (expires_at);

-- One row per sync: a source table whose rows are embedded into a destination table.
create table mlops.embedding_syncs (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  source_table regclass not null,
  key_columns text[] not null,
  text_columns text[] not null,
  template text,
  metadata_columns text[] not null default '{}',
  text_sql text not null,
  model_version_id bigint not null references mlops.model_versions (id),
  destination text not null,
  physical_table text not null,
  generation integer not null default 1,
  building_model_version_id bigint references mlops.model_versions (id),
  building_table text,
  max_attempts integer not null default 3 check (max_attempts > 0),
  created_at timestamptz not null default pg_catalog.now(),
  switched_at timestamptz not null default pg_catalog.now()
);
comment on table mlops.embedding_syncs is
  'Embedding syncs: source table, embedded columns or template, model version, destination view and its current physical table.';

-- Work queue: keys of source rows to (re)embed. Claimed with FOR UPDATE SKIP LOCKED and
-- deleted in the same transaction that writes the embedding, so a crash loses nothing.
create table mlops.embedding_queue (
  id bigint generated always as identity primary key,
  sync_id bigint not null references mlops.embedding_syncs (id) on delete cascade,
  target text not null default 'current' check (target in ('current', 'building')),
  key jsonb not null,
  enqueued_at timestamptz not null default pg_catalog.now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default pg_catalog.now(),
  last_error text,
  failed_at timestamptz,
  unique (sync_id, target, key)
);
comment on table mlops.embedding_queue is
  'Pending (and failed) source rows per sync; failed rows stay here with attempts and last_error (see mlops.embedding_errors).';
create index embedding_queue_claim on mlops.embedding_queue (sync_id, next_attempt_at) where failed_at is null;

select mlops._config_dump('mlops.embedding_cache');
select mlops._config_dump('mlops.embedding_syncs');
select mlops._config_dump('mlops.embedding_queue');
