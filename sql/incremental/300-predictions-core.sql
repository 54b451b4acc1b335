-- Prediction log: a time-partitioned table of predictions, a request-key table that makes
-- request_id idempotent across partitions, feedback keyed by request_id, and settings.
-- Partitions are created at run time (never inside CREATE EXTENSION, so they are plain
-- tables that retention can drop and pg_dump dumps with their data).

create table mlops.prediction_settings (
  singleton boolean primary key default true check (singleton),
  partition_interval interval not null default '1 day',
  premake integer not null default 3 check (premake between 0 and 366),
  retention interval,
  updated_at timestamptz not null default pg_catalog.now()
);
comment on table mlops.prediction_settings is
  'At most one row: partition width of mlops.predictions (default 1 day, UTC-aligned), partitions made ahead, retention. '
  'No row means the defaults (no seeded row, so pg_dump/pg_restore never collide with CREATE EXTENSION).';
select mlops._config_dump('mlops.prediction_settings');

create sequence mlops.predictions_id_seq as bigint cache 32;
comment on sequence mlops.predictions_id_seq is 'Ids of mlops.predictions rows.';

create table mlops.predictions (
  id bigint not null default pg_catalog.nextval('mlops.predictions_id_seq'),
  request_id text collate "C" not null,
  model text not null,
  model_version integer not null,
  model_version_id bigint not null,
  alias text,
  experiment text,
  variant text,
  unit_id text,
  features jsonb,
  feature_vector vector,
  output jsonb,
  score float8,
  label text,
  confidence float8,
  latency_ms float8,
  error text,
  created_at timestamptz not null default pg_catalog.now()
) partition by range (created_at);
-- No CHECK constraints for the rules of log_prediction: the functions check them, and a CHECK
-- costs every single-row insert an expression set-up (measured: about +25% per log_prediction).
alter sequence mlops.predictions_id_seq owned by mlops.predictions.id;
-- BRIN on created_at is created per partition (see _ensure_prediction_partition): an index on the
-- extension-owned parent would be re-created on ATTACH during pg_restore and collide with the dump.
comment on table mlops.predictions is
  'Every logged prediction, range-partitioned by created_at (see mlops.prediction_partitions). request_id is unique '
  'through mlops.prediction_requests, not through an index of this table.';
comment on column mlops.predictions.id is 'Prediction id (also stored in mlops.prediction_requests).';
comment on column mlops.predictions.request_id is 'Idempotency key: logging the same request_id twice keeps the first row.';
comment on column mlops.predictions.model is 'Model name.';
comment on column mlops.predictions.model_version is 'Model version number that served the prediction.';
comment on column mlops.predictions.model_version_id is 'mlops.model_versions.id of that version.';
comment on column mlops.predictions.alias is 'Alias the caller used to pick the version (champion, challenger, ...), if any.';
comment on column mlops.predictions.experiment is 'A/B experiment the request belonged to, if any.';
comment on column mlops.predictions.variant is 'Experiment variant served, if any.';
comment on column mlops.predictions.unit_id is 'User / entity id the prediction was made for.';
comment on column mlops.predictions.features is 'Input features (JSON object, at most 64 KiB).';
comment on column mlops.predictions.feature_vector is 'Optional feature vector for drift monitoring.';
comment on column mlops.predictions.output is 'Full model output (JSON).';
comment on column mlops.predictions.score is 'Numeric prediction or score.';
comment on column mlops.predictions.label is 'Predicted class label.';
comment on column mlops.predictions.confidence is 'Model confidence in [0, 1].';
comment on column mlops.predictions.latency_ms is 'Inference latency in milliseconds.';
comment on column mlops.predictions.error is 'Error message when the prediction failed; null on success.';
comment on column mlops.predictions.created_at is 'When the prediction was made (partition key).';
select mlops._config_dump('mlops.predictions_id_seq');

-- Two columns and one index, nothing more: every logged prediction writes one row here.
-- Retention removes the keys of a dropped partition by joining its rows (request_id, id).
create table mlops.prediction_requests (
  request_id text collate "C" primary key,
  prediction_id bigint not null
);
comment on table mlops.prediction_requests is
  'One row per logged request_id: the global unique key a partitioned table cannot have, and the id of its row.';
comment on column mlops.prediction_requests.request_id is 'Idempotency key of a logged prediction.';
comment on column mlops.prediction_requests.prediction_id is 'mlops.predictions.id of the row logged for it.';
select mlops._config_dump('mlops.prediction_requests');

create table mlops.prediction_partitions (
  name text primary key,
  lower_bound timestamptz not null,
  upper_bound timestamptz not null check (upper_bound > lower_bound),
  created_at timestamptz not null default pg_catalog.now()
);
create index prediction_partitions_bounds on mlops.prediction_partitions (lower_bound, upper_bound);
comment on table mlops.prediction_partitions is 'Partitions of mlops.predictions and their [lower_bound, upper_bound) ranges.';
select mlops._config_dump('mlops.prediction_partitions');

create table mlops.prediction_feedback (
  request_id text collate "C" primary key,
  actual jsonb,
  label text,
  value float8,
  correct boolean,
  reward float8,
  created_at timestamptz not null default pg_catalog.now(),
  updated_at timestamptz not null default pg_catalog.now()
);
create index prediction_feedback_created_brin on mlops.prediction_feedback using brin (created_at);
comment on table mlops.prediction_feedback is
  'Ground truth per request_id. Independent of mlops.predictions, so feedback that arrives before its prediction is kept '
  'and joins once the prediction is logged; the last feedback for a request wins.';
select mlops._config_dump('mlops.prediction_feedback');
