-- Model registry core tables: models, versions, aliases. Other capabilities reference
-- model_versions.id; the registry's later files add policies, history and jobs.
create table mlops.models (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  task text not null check (task in ('classification', 'regression', 'ranking', 'embedding', 'other')),
  description text not null default '',
  tags jsonb not null default '{}',
  next_version integer not null default 1,
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user
);
comment on table mlops.models is 'Registered models; versions live in mlops.model_versions.';

create table mlops.model_versions (
  id bigint generated always as identity primary key,
  model_id bigint not null references mlops.models (id),
  version integer not null check (version > 0),
  semver text,
  status text not null default 'registered'
    check (status in ('registered', 'staging', 'production', 'archived', 'failed')),
  flavor text not null check (flavor in ('sklearn', 'onnx', 'linear', 'custom', 'sentence_transformers')),
  artifact bytea,
  artifact_uri text,
  artifact_sha256 text not null check (artifact_sha256 ~ '^[0-9a-f]{64}$'),
  metrics jsonb not null default '{}',
  params jsonb not null default '{}',
  signature jsonb not null default '{}',
  training_set text,
  training_job bigint,
  tags jsonb not null default '{}',
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user,
  unique (model_id, version),
  check (artifact is not null or artifact_uri is not null)
);
comment on table mlops.model_versions is 'Immutable model versions with artifact (or URI) and sha256, metrics, params, lineage.';

create table mlops.model_aliases (
  model_id bigint not null references mlops.models (id),
  alias text not null check (alias ~ '^[a-z][a-z0-9_]{0,62}$'),
  version_id bigint not null references mlops.model_versions (id),
  updated_at timestamptz not null default pg_catalog.now(),
  updated_by text not null default current_user,
  primary key (model_id, alias)
);
comment on table mlops.model_aliases is 'Current alias -> version mapping; the primary key makes one version per (model, alias) a constraint.';

select mlops._config_dump('mlops.models');
select mlops._config_dump('mlops.model_versions');
select mlops._config_dump('mlops.model_aliases');
