-- A/B experiments: definitions, variants (GrowthBook-style weights and bucket ranges),
-- sticky assignments (first exposure of a unit, recorded once), status history and
-- conclusions. Assignment is computed in SQL bit-for-bit like GrowthBook's v2 hash.

create table mlops.experiments (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  model_id bigint references mlops.models (id),
  unit text not null default 'user_id',
  primary_metric text not null default 'conversion'
    check (primary_metric in ('conversion', 'accuracy', 'reward', 'value')),
  namespace text check (namespace ~ '^[a-z][a-z0-9_]{0,62}$'),
  namespace_start float8 not null default 0,
  namespace_end float8 not null default 1,
  coverage float8 not null default 1 check (coverage >= 0 and coverage <= 1),
  seed text not null,
  hash_version integer not null default 2 check (hash_version = 2),
  status text not null default 'draft' check (status in ('draft', 'running', 'paused', 'completed')),
  starts_at timestamptz,
  ends_at timestamptz,
  started_at timestamptz,
  completed_at timestamptz,
  winner text,
  promoted_version integer,
  result jsonb,
  description text not null default '',
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user,
  check (namespace_start >= 0 and namespace_end <= 1 and namespace_start < namespace_end),
  check (ends_at is null or starts_at is null or ends_at > starts_at)
);
comment on table mlops.experiments is
  'A/B experiments: unit, metric, namespace range, coverage, seed, status (draft -> running -> paused -> completed).';

create table mlops.experiment_variants (
  experiment_id bigint not null references mlops.experiments (id) on delete cascade,
  position integer not null check (position >= 0),
  name text not null check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  alias text,
  version integer,
  weight float8 not null check (weight >= 0 and weight <= 1),
  primary key (experiment_id, position),
  unique (experiment_id, name)
);
comment on table mlops.experiment_variants is
  'Variants of an experiment in GrowthBook order (position 0 is the control), each serving a model alias or version.';

-- No foreign key on experiment_id: only mlops.assign/assign_batch write here, with the id of an
-- existing experiment, and a per-row RI trigger would cost more than the hashing in bulk assignment.
create table mlops.experiment_assignments (
  experiment_id bigint not null,
  unit_id text collate "C" not null,
  variant integer not null,
  assigned_at timestamptz not null default pg_catalog.now(),
  primary key (experiment_id, unit_id)
);
comment on table mlops.experiment_assignments is
  'Sticky assignments: the first exposure of each unit, recorded once; later weight or coverage changes never move it.';

create table mlops.experiment_history (
  id bigint generated always as identity primary key,
  experiment_id bigint not null references mlops.experiments (id) on delete cascade,
  from_status text,
  to_status text not null,
  details jsonb not null default '{}',
  changed_at timestamptz not null default pg_catalog.now(),
  changed_by text not null default current_user
);
create index experiment_history_experiment on mlops.experiment_history (experiment_id, changed_at);
comment on table mlops.experiment_history is 'Status transitions and traffic changes of every experiment.';

select mlops._config_dump('mlops.experiments');
select mlops._config_dump('mlops.experiment_variants');
select mlops._config_dump('mlops.experiment_assignments');
select mlops._config_dump('mlops.experiment_history');
