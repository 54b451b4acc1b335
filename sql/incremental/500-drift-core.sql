-- Drift detection tables: stored reference profiles (with a vector sample for MMD / NN
-- distance), monitors, runs and per-column results.
create table mlops.drift_profiles (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  source_kind text not null check (source_kind in ('query', 'feature_group', 'model')),
  source text not null,
  window_start timestamptz,
  window_end timestamptz,
  row_count bigint not null,
  columns jsonb not null,
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user
);
comment on table mlops.drift_profiles is
  'Reference profiles: per-column type, count, null rate, quantiles, histogram, categories, moments (and vector centroid/variance), computed once from the reference data.';
comment on column mlops.drift_profiles.id is 'Profile id.';
comment on column mlops.drift_profiles.name is 'Unique profile name.';
comment on column mlops.drift_profiles.source_kind is 'query, feature_group or model (prediction log).';
comment on column mlops.drift_profiles.source is 'The SQL query, feature group or model name the reference was read from.';
comment on column mlops.drift_profiles.window_start is 'Start of the reference time window (model / feature group sources).';
comment on column mlops.drift_profiles.window_end is 'End of the reference time window.';
comment on column mlops.drift_profiles.row_count is 'Rows in the reference set.';
comment on column mlops.drift_profiles.columns is 'Per-column profile: {column: {type, count, nulls, quantiles, edges, hist, categories, moments, values, centroid, variance}}.';
comment on column mlops.drift_profiles.created_at is 'When the profile was computed.';
comment on column mlops.drift_profiles.created_by is 'Role that computed it.';

create table mlops.drift_profile_vectors (
  profile_id bigint not null references mlops.drift_profiles (id) on delete cascade,
  column_name text not null,
  ordinal integer not null,
  embedding vector not null,
  primary key (profile_id, column_name, ordinal)
);
comment on table mlops.drift_profile_vectors is
  'Random sample of reference vectors per vector column (MMD and nearest-neighbour distance drift).';
comment on column mlops.drift_profile_vectors.profile_id is 'Profile the sample belongs to.';
comment on column mlops.drift_profile_vectors.column_name is 'Vector column.';
comment on column mlops.drift_profile_vectors.ordinal is 'Position in the sample.';
comment on column mlops.drift_profile_vectors.embedding is 'Reference vector.';

create table mlops.drift_monitors (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  profile_id bigint not null references mlops.drift_profiles (id),
  source_kind text not null check (source_kind in ('query', 'feature_group', 'model')),
  source text not null,
  time_window interval,
  columns jsonb not null,
  thresholds jsonb not null default '{}',
  drift_share double precision not null default 0.5 check (drift_share > 0 and drift_share <= 1),
  schedule interval,
  model text,
  enabled boolean not null default true,
  last_run_at timestamptz,
  created_at timestamptz not null default pg_catalog.now(),
  created_by text not null default current_user
);
comment on table mlops.drift_monitors is 'Drift monitors: current data source, columns with methods, thresholds, schedule.';
comment on column mlops.drift_monitors.id is 'Monitor id.';
comment on column mlops.drift_monitors.name is 'Unique monitor name.';
comment on column mlops.drift_monitors.profile_id is 'Reference profile compared against.';
comment on column mlops.drift_monitors.source_kind is 'query, feature_group or model (prediction log).';
comment on column mlops.drift_monitors.source is 'The SQL query, feature group or model name of the current data.';
comment on column mlops.drift_monitors.time_window is 'Current data window (now() - window .. now()) for model / feature group sources.';
comment on column mlops.drift_monitors.columns is 'Column -> method (auto, ks, wasserstein, psi, js, chi2, z, embedding).';
comment on column mlops.drift_monitors.thresholds is 'Method -> threshold overrides.';
comment on column mlops.drift_monitors.drift_share is 'Share of drifted columns at which the dataset is drifted (default 0.5).';
comment on column mlops.drift_monitors.schedule is 'How often run_due_monitors() runs it; null = only on demand.';
comment on column mlops.drift_monitors.model is 'Model whose inputs or predictions are monitored (copied into alert details).';
comment on column mlops.drift_monitors.enabled is 'Disabled monitors are skipped by run_due_monitors().';
comment on column mlops.drift_monitors.last_run_at is 'When it last ran.';
comment on column mlops.drift_monitors.created_at is 'When it was created.';
comment on column mlops.drift_monitors.created_by is 'Role that created it.';

create table mlops.drift_runs (
  id bigint generated always as identity primary key,
  monitor_id bigint not null references mlops.drift_monitors (id) on delete cascade,
  started_at timestamptz not null default pg_catalog.now(),
  finished_at timestamptz,
  reference_rows bigint not null,
  current_rows bigint not null,
  columns_total integer not null,
  columns_drifted integer not null,
  share_drifted double precision not null,
  dataset_drift boolean not null
);
create index drift_runs_monitor_idx on mlops.drift_runs (monitor_id, started_at desc);
comment on table mlops.drift_runs is 'One row per monitor run with the dataset drift share.';
comment on column mlops.drift_runs.id is 'Run id.';
comment on column mlops.drift_runs.monitor_id is 'Monitor that ran.';
comment on column mlops.drift_runs.started_at is 'Start of the run.';
comment on column mlops.drift_runs.finished_at is 'End of the run.';
comment on column mlops.drift_runs.reference_rows is 'Rows in the reference profile.';
comment on column mlops.drift_runs.current_rows is 'Rows of current data scanned.';
comment on column mlops.drift_runs.columns_total is 'Columns checked.';
comment on column mlops.drift_runs.columns_drifted is 'Columns found drifted.';
comment on column mlops.drift_runs.share_drifted is 'columns_drifted / columns_total.';
comment on column mlops.drift_runs.dataset_drift is 'share_drifted >= the monitor''s drift_share.';

create table mlops.drift_results (
  run_id bigint not null references mlops.drift_runs (id) on delete cascade,
  column_name text not null,
  column_type text not null check (column_type in ('numeric', 'categorical', 'vector')),
  method text not null,
  statistic double precision,
  p_value double precision,
  threshold double precision not null,
  drifted boolean not null,
  details jsonb not null default '{}',
  primary key (run_id, column_name, method)
);
comment on table mlops.drift_results is 'Per-column drift statistics of each run.';
comment on column mlops.drift_results.run_id is 'Run.';
comment on column mlops.drift_results.column_name is 'Column checked.';
comment on column mlops.drift_results.column_type is 'numeric, categorical or vector.';
comment on column mlops.drift_results.method is 'Statistic used: ks, wasserstein (normed), psi, js, chi2, z, centroid_cosine, mmd, ...';
comment on column mlops.drift_results.statistic is 'Value of the statistic.';
comment on column mlops.drift_results.p_value is 'p-value for tests (ks, chi2, z); null for distances.';
comment on column mlops.drift_results.threshold is 'Threshold: p-value below it (tests) or statistic at/above it (distances) means drift.';
comment on column mlops.drift_results.drifted is 'Whether the column drifted.';
comment on column mlops.drift_results.details is 'Histograms, counts, unseen categories and other figures for reports.';

select mlops._config_dump('mlops.drift_profiles');
select mlops._config_dump('mlops.drift_profile_vectors');
select mlops._config_dump('mlops.drift_monitors');
select mlops._config_dump('mlops.drift_runs');
select mlops._config_dump('mlops.drift_results');
