-- BI views of the registry (Superset / Grafana): simple column types, a timestamptz "time",
-- a comment on every column. The tables mlops.models / mlops.model_versions keep their
-- names (other capabilities reference them), so their BI views are models_bi / model_versions_bi.

create or replace view mlops.models_bi as
  select m.created_at as time, m.id as model_id, m.name as model, m.task, m.description, m.created_by,
         (select pg_catalog.count(*) from mlops.model_versions v where v.model_id = m.id)::integer as version_count,
         (select pg_catalog.max(v.version) from mlops.model_versions v where v.model_id = m.id) as latest_version,
         (select v.version from mlops.model_aliases a join mlops.model_versions v on v.id = a.version_id
           where a.model_id = m.id and a.alias = 'production') as production_version,
         (select v.version from mlops.model_aliases a join mlops.model_versions v on v.id = a.version_id
           where a.model_id = m.id and a.alias = 'staging') as staging_version,
         m.tags::text as tags
    from mlops.models m;
comment on view mlops.models_bi is 'BI view: one row per registered model with version count and current production/staging versions.';
comment on column mlops.models_bi.time is 'When the model was registered.';
comment on column mlops.models_bi.model_id is 'Model id.';
comment on column mlops.models_bi.model is 'Model name.';
comment on column mlops.models_bi.task is 'classification, regression, ranking, embedding or other.';
comment on column mlops.models_bi.description is 'Free-text description.';
comment on column mlops.models_bi.created_by is 'Database role that registered it.';
comment on column mlops.models_bi.version_count is 'Number of versions.';
comment on column mlops.models_bi.latest_version is 'Highest version number; empty before the first version.';
comment on column mlops.models_bi.production_version is 'Version under alias production; empty when none.';
comment on column mlops.models_bi.staging_version is 'Version under alias staging; empty when none.';
comment on column mlops.models_bi.tags is 'Tags as JSON text.';

create or replace view mlops.model_versions_bi as
  select v.created_at as time, v.id as version_id, m.name as model, v.version, v.semver, v.status, v.flavor,
         v.artifact_sha256, pg_catalog.octet_length(v.artifact)::bigint as artifact_bytes, v.artifact_uri,
         coalesce((select pg_catalog.string_agg(a.alias, ', ' order by a.alias) from mlops.model_aliases a
                    where a.version_id = v.id), '') as aliases,
         (v.metrics ->> 'accuracy')::float8 as accuracy, v.metrics::text as metrics, v.params::text as params,
         v.training_set, v.training_job, v.created_by
    from mlops.model_versions v join mlops.models m on m.id = v.model_id;
comment on view mlops.model_versions_bi is 'BI view: one row per model version with its stage, current aliases, metrics and lineage.';
comment on column mlops.model_versions_bi.time is 'When the version was created.';
comment on column mlops.model_versions_bi.version_id is 'Version id (mlops.model_versions.id).';
comment on column mlops.model_versions_bi.model is 'Model name.';
comment on column mlops.model_versions_bi.version is 'Per-model version number (1, 2, ...).';
comment on column mlops.model_versions_bi.semver is 'Semantic version label, when given.';
comment on column mlops.model_versions_bi.status is 'Stage: registered, staging, production, archived or failed (derived from aliases staging/production).';
comment on column mlops.model_versions_bi.flavor is 'Artifact flavor: sklearn, onnx, linear, custom.';
comment on column mlops.model_versions_bi.artifact_sha256 is 'sha256 of the artifact.';
comment on column mlops.model_versions_bi.artifact_bytes is 'Size of the stored artifact in bytes; empty when stored by URI.';
comment on column mlops.model_versions_bi.artifact_uri is 'Where the artifact lives when not stored in the database.';
comment on column mlops.model_versions_bi.aliases is 'Aliases currently pointing to this version, comma-separated.';
comment on column mlops.model_versions_bi.accuracy is 'Metric accuracy, when logged.';
comment on column mlops.model_versions_bi.metrics is 'All metrics as JSON text.';
comment on column mlops.model_versions_bi.params is 'Training parameters as JSON text.';
comment on column mlops.model_versions_bi.training_set is 'Training set the version was trained on (lineage).';
comment on column mlops.model_versions_bi.training_job is 'Training job that produced it (lineage).';
comment on column mlops.model_versions_bi.created_by is 'Database role that created it.';

create or replace view mlops.alias_history as
  select e.changed_at as time, e.id as event_id, m.name as model, e.alias, e.action,
         f.version as from_version, t.version as to_version, e.reason, e.forced,
         pg_catalog.jsonb_array_length(e.failed_rules) as failed_rule_count,
         (select pg_catalog.string_agg(r ->> 'message', '; ') from pg_catalog.jsonb_array_elements(e.failed_rules) r) as failed_rules,
         e.changed_by
    from mlops.alias_events e join mlops.models m on m.id = e.model_id
    left join mlops.model_versions f on f.id = e.from_version_id
    left join mlops.model_versions t on t.id = e.to_version_id;
comment on view mlops.alias_history is 'BI view: every alias move (set, delete, rollback): who, when, from which version to which, why.';
comment on column mlops.alias_history.time is 'When the alias moved.';
comment on column mlops.alias_history.event_id is 'History event id (increasing).';
comment on column mlops.alias_history.model is 'Model name.';
comment on column mlops.alias_history.alias is 'Alias that moved.';
comment on column mlops.alias_history.action is 'set, delete or rollback.';
comment on column mlops.alias_history.from_version is 'Version the alias pointed to before; empty when it was new.';
comment on column mlops.alias_history.to_version is 'Version it points to after; empty for delete.';
comment on column mlops.alias_history.reason is 'Reason given by the caller.';
comment on column mlops.alias_history.forced is 'True when force => true overrode failed promotion-policy rules.';
comment on column mlops.alias_history.failed_rule_count is 'Number of policy rules that failed (overridden when forced).';
comment on column mlops.alias_history.failed_rules is 'Messages of the failed rules, semicolon-separated.';
comment on column mlops.alias_history.changed_by is 'Database role that moved the alias.';

create or replace view mlops.training_jobs as
  select j.submitted_at as time, j.id as job_id, m.name as model, j.status, j.worker, j.attempts, j.max_attempts,
         j.progress, j.started_at, j.heartbeat_at, j.lease_until, j.finished_at,
         extract(epoch from j.started_at - j.submitted_at)::float8 as queue_seconds,
         extract(epoch from coalesce(j.finished_at, pg_catalog.now()) - j.started_at)::float8 as duration_seconds,
         v.version as version, j.error, j.submitted_by
    from mlops.training_job_queue j join mlops.models m on m.id = j.model_id
    left join mlops.model_versions v on v.id = j.version_id;
comment on view mlops.training_jobs is 'BI view: training jobs with status, worker, progress, queue time and duration.';
comment on column mlops.training_jobs.time is 'When the job was submitted.';
comment on column mlops.training_jobs.job_id is 'Job id.';
comment on column mlops.training_jobs.model is 'Model being trained.';
comment on column mlops.training_jobs.status is 'queued, running, succeeded, failed or cancelled.';
comment on column mlops.training_jobs.worker is 'Worker holding (or that last held) the job.';
comment on column mlops.training_jobs.attempts is 'How many times it was claimed.';
comment on column mlops.training_jobs.max_attempts is 'Claims allowed before an expired lease fails it.';
comment on column mlops.training_jobs.progress is 'Reported progress, 0 to 1.';
comment on column mlops.training_jobs.started_at is 'When the current (or last) attempt started.';
comment on column mlops.training_jobs.heartbeat_at is 'Last progress report.';
comment on column mlops.training_jobs.lease_until is 'When the running attempt''s lease expires (requeued after that).';
comment on column mlops.training_jobs.finished_at is 'When it succeeded or failed.';
comment on column mlops.training_jobs.queue_seconds is 'Seconds between submission and the start of the last attempt.';
comment on column mlops.training_jobs.duration_seconds is 'Seconds the last attempt ran (until now while running).';
comment on column mlops.training_jobs.version is 'Model version created by the job.';
comment on column mlops.training_jobs.error is 'Failure message.';
comment on column mlops.training_jobs.submitted_by is 'Database role that submitted it.';
