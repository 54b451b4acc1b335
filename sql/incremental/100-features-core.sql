-- Feature store registry: entities, feature group versions and their features, window
-- aggregates and training-set lineage. Data lives in mlops_features.<group>__v<version>
-- (history) and mlops_features.<group>__v<version>_online (newest row per entity).
create table mlops.entities (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  key_type text not null check (key_type in ('int8', 'int4', 'text', 'uuid')),
  key_column text not null check (key_column ~ '^[a-z][a-z0-9_]{0,62}$'),
  description text not null default '',
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user
);
comment on table mlops.entities is 'Entities feature groups are keyed by (customer, item, ...); key_column names the key in every group table.';
comment on column mlops.entities.name is 'Entity name.';
comment on column mlops.entities.key_type is 'SQL type of the entity key: int8, int4, text or uuid.';
comment on column mlops.entities.key_column is 'Name of the key column in group tables and training-set spines.';
comment on column mlops.entities.description is 'Free text.';
comment on column mlops.entities.created_at is 'When the entity was created.';
comment on column mlops.entities.created_by is 'Role that created it.';

create table mlops.feature_group_versions (
  id bigint generated always as identity primary key,
  name text not null check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  version integer not null check (version > 0),
  entity text not null references mlops.entities (name),
  spec jsonb not null,
  ttl interval,
  freshness_sla interval,
  notify boolean not null default false,
  description text not null default '',
  source text,
  table_name text not null,
  online_table text not null,
  is_current boolean not null default true,
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user,
  unique (name, version)
);
create unique index feature_group_versions_current_idx on mlops.feature_group_versions (name) where is_current;
comment on table mlops.feature_group_versions is 'One row per feature group version; a schema change creates a new version, old tables stay readable.';
comment on column mlops.feature_group_versions.spec is 'Normalized feature definitions (array of {name, type, rules}) this version was created from.';
comment on column mlops.feature_group_versions.ttl is 'Feature values older than this are EXPIRED online and ignored by training sets, as a fixed duration (a day is 24 h, a month 30 days); null = never.';
comment on column mlops.feature_group_versions.freshness_sla is 'Newest event older than this raises a feature_freshness alert; null = ttl.';
comment on column mlops.feature_group_versions.table_name is 'History table in schema mlops_features.';
comment on column mlops.feature_group_versions.online_table is 'Online table (newest row per entity) in schema mlops_features.';

create table mlops.feature_defs (
  group_id bigint not null references mlops.feature_group_versions (id),
  name text not null check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  position integer not null,
  data_type text not null,
  dims integer,
  not_null boolean not null default false,
  min_value float8,
  max_value float8,
  allowed jsonb,
  primary key (group_id, name)
);
comment on table mlops.feature_defs is 'Features of each group version with their type and validation rules.';

create table mlops.aggregate_features (
  group_id bigint not null references mlops.feature_group_versions (id),
  name text not null check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  feature text not null,
  agg text not null check (agg in ('count', 'sum', 'avg', 'min', 'max')),
  window_size interval not null check (window_size > interval '0'),
  created_at timestamptz not null default pg_catalog.now(),
  primary key (group_id, name)
);
comment on table mlops.aggregate_features is 'Window aggregates over a group''s history (count/sum/avg/min/max over a window), point-in-time correct.';

create table mlops.training_sets (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  table_name text not null,
  spine text not null,
  timestamp_column text not null,
  features text[] not null,
  group_versions jsonb not null,
  row_count bigint not null,
  content_hash text not null,
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user
);
comment on table mlops.training_sets is 'Lineage of materialized training sets: spine, features, group versions, row count, sha256 of the content.';

select mlops._config_dump('mlops.entities');
select mlops._config_dump('mlops.feature_group_versions');
select mlops._config_dump('mlops.feature_defs');
select mlops._config_dump('mlops.aggregate_features');
select mlops._config_dump('mlops.training_sets');
