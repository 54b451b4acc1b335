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

-- At most one semver label per model version, unique within a model.
create unique index model_versions_semver_idx on mlops.model_versions (model_id, semver) where semver is not null;
comment on column mlops.model_versions.status is
  'Stage derived from aliases (see mlops._sync_stages): production when the alias production points here, else '
  'staging when alias staging does, else archived once it held either and lost it, else registered; '
  'failed is set explicitly (mlops.set_version_status) and such a version can never get an alias.';

-- Every alias move (set, delete, rollback), never updated: the answer to "which version was champion when".
create table mlops.alias_events (
  id bigint generated always as identity primary key,
  model_id bigint not null references mlops.models (id),
  alias text not null,
  action text not null check (action in ('set', 'delete', 'rollback')),
  from_version_id bigint references mlops.model_versions (id),
  to_version_id bigint references mlops.model_versions (id),
  reason text,
  forced boolean not null default false,
  failed_rules jsonb not null default '[]',
  changed_by text not null default current_user,
  changed_at timestamptz not null default pg_catalog.clock_timestamp()
);
create index alias_events_model_alias_idx on mlops.alias_events (model_id, alias, id);
comment on table mlops.alias_events is
  'Append-only history of alias moves: who, when, from which version to which, why, and whether a policy was forced.';

-- Promotion policies: rules checked by mlops.set_alias before an alias moves.
create table mlops.promotion_policies (
  model_id bigint not null references mlops.models (id),
  alias text not null check (alias ~ '^[a-z][a-z0-9_]{0,62}$'),
  rules jsonb not null check (jsonb_typeof(rules) = 'array'),
  updated_at timestamptz not null default pg_catalog.now(),
  updated_by text not null default current_user,
  primary key (model_id, alias)
);
comment on table mlops.promotion_policies is 'Promotion policy per (model, alias): a jsonb array of rules (see mlops.set_promotion_policy).';

-- Training-job queue: workers claim with FOR UPDATE SKIP LOCKED, hold a lease, report progress.
create table mlops.training_job_queue (
  id bigint generated always as identity primary key,
  model_id bigint not null references mlops.models (id),
  config jsonb not null default '{}',
  status text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  worker text,
  attempts integer not null default 0,
  max_attempts integer not null default 3 check (max_attempts > 0),
  lease_seconds integer not null default 300 check (lease_seconds > 0),
  lease_until timestamptz,
  progress float8 not null default 0 check (progress >= 0 and progress <= 1),
  metrics jsonb not null default '{}',
  error text,
  version_id bigint references mlops.model_versions (id),
  submitted_at timestamptz not null default pg_catalog.now(),
  submitted_by text not null default current_user,
  started_at timestamptz,
  heartbeat_at timestamptz,
  finished_at timestamptz
);
create index training_job_queue_claim_idx on mlops.training_job_queue (id) where status = 'queued';
create index training_job_queue_lease_idx on mlops.training_job_queue (lease_until) where status = 'running';
comment on table mlops.training_job_queue is 'Training jobs: queued -> running (leased by a worker) -> succeeded | failed; expired leases are requeued.';

create table mlops.training_job_logs (
  job_id bigint not null references mlops.training_job_queue (id),
  at timestamptz not null default pg_catalog.clock_timestamp(),
  worker text,
  progress float8,
  line text not null
);
create index training_job_logs_job_idx on mlops.training_job_logs (job_id, at);
comment on table mlops.training_job_logs is 'Log lines reported by training workers (mlops.report_progress).';

alter table mlops.model_versions add foreign key (training_job) references mlops.training_job_queue (id);

select mlops._config_dump('mlops.alias_events');
select mlops._config_dump('mlops.promotion_policies');
select mlops._config_dump('mlops.training_job_queue');
select mlops._config_dump('mlops.training_job_logs');
