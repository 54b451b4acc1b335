-- Column comments of the model registry tables (BI tools show them as column descriptions).
comment on column mlops.models.id is 'Model id, referenced by mlops.model_versions, mlops.model_aliases and other registry tables.';
comment on column mlops.models.name is 'Unique model name: 1 to 63 lowercase letters, digits and _, starting with a letter.';
comment on column mlops.models.task is 'What the model does: classification, regression, ranking, embedding or other.';
comment on column mlops.models.description is 'Free-text description; empty string when none was given.';
comment on column mlops.models.tags is 'Free-form JSON object of tags; {"pgmlops_builtin": true} marks models seeded by the install, which pg_dump skips.';
comment on column mlops.models.next_version is 'Version number the next mlops.create_model_version (or register_embedding_model) takes, incremented under the model''s row lock so numbers are gap-free.';
comment on column mlops.models.created_at is 'When the model was registered.';
comment on column mlops.models.created_by is 'Role (current_user) that registered it.';

comment on column mlops.model_versions.id is 'Version id, referenced by mlops.model_aliases, mlops.predictions.model_version_id, mlops.embedding_syncs and others.';
comment on column mlops.model_versions.model_id is 'Model (mlops.models.id) this is a version of.';
comment on column mlops.model_versions.version is 'Per-model version number, gap-free from 1 (taken from mlops.models.next_version).';
comment on column mlops.model_versions.semver is 'Semantic version label MAJOR.MINOR.PATCH[-pre][+build], unique within the model; null when none was given.';
comment on column mlops.model_versions.flavor is 'Artifact format: sklearn (pickle), onnx, linear (UTF-8 JSON {coefficients, intercept, link}, scored in SQL), custom, or sentence_transformers (embedding models).';
comment on column mlops.model_versions.artifact is 'Serialized model stored in the database; null when the model is only referenced by artifact_uri.';
comment on column mlops.model_versions.artifact_uri is 'Where the artifact lives outside the database (pypi:<package> for embedding models); null when not given.';
comment on column mlops.model_versions.artifact_sha256 is 'Hex sha256 of the artifact: computed from artifact when stored, else the checksum given with artifact_uri; pgmlops_python re-checks it on load.';
comment on column mlops.model_versions.metrics is 'Evaluation metrics as a JSON object of numbers (e.g. {"accuracy": 0.91}), read by promotion-policy metric rules.';
comment on column mlops.model_versions.params is 'Training parameters as a JSON object (a training job''s config by default); for embedding models dimension, normalize, max_seq_length and package.';
comment on column mlops.model_versions.signature is 'Input/output description as a JSON object: inputs (feature names) or n_features set the expected feature count, feature_vector_dim the dimension of logged feature vectors; {} when none.';
comment on column mlops.model_versions.training_set is 'Name of the training set the version was trained on (lineage, usually mlops.training_sets.name, not enforced); null when unknown.';
comment on column mlops.model_versions.training_job is 'Training job (mlops.training_job_queue.id) that produced the version; null when registered directly.';
comment on column mlops.model_versions.tags is 'Free-form JSON object of tags; {"pgmlops_builtin": true} marks versions seeded by the install, which pg_dump skips.';
comment on column mlops.model_versions.created_at is 'When the version was created.';
comment on column mlops.model_versions.created_by is 'Role (current_user) that created it.';

comment on column mlops.model_aliases.model_id is 'Model (mlops.models.id) the alias belongs to.';
comment on column mlops.model_aliases.alias is 'Alias name (e.g. production, staging, champion); latest is reserved and never stored.';
comment on column mlops.model_aliases.version_id is 'Version (mlops.model_versions.id) the alias points to now.';
comment on column mlops.model_aliases.updated_at is 'When the alias last moved (or was created).';
comment on column mlops.model_aliases.updated_by is 'Role (current_user) that last moved it.';

comment on column mlops.alias_events.id is 'History event id, increasing in the order the moves happened (returned by set_alias, delete_alias).';
comment on column mlops.alias_events.model_id is 'Model (mlops.models.id) whose alias moved.';
comment on column mlops.alias_events.alias is 'Alias that moved.';
comment on column mlops.alias_events.action is 'set (mlops.set_alias, transition_stage, conclude_experiment), delete (mlops.delete_alias) or rollback (mlops.rollback).';
comment on column mlops.alias_events.from_version_id is 'Version (mlops.model_versions.id) the alias pointed to before the move; null when the alias was new.';
comment on column mlops.alias_events.to_version_id is 'Version (mlops.model_versions.id) the alias points to after the move; null for delete.';
comment on column mlops.alias_events.reason is 'Reason given by the caller (required with force); null when none.';
comment on column mlops.alias_events.forced is 'True when force => true overrode failed promotion-policy rules; false otherwise.';
comment on column mlops.alias_events.failed_rules is 'Overridden policy failures as a JSON array of {rule, kind, message}; [] when no rule failed.';
comment on column mlops.alias_events.changed_by is 'Role (current_user) that moved the alias.';
comment on column mlops.alias_events.changed_at is 'Wall-clock time of the move (clock_timestamp, so moves within one transaction are ordered).';

comment on column mlops.promotion_policies.model_id is 'Model (mlops.models.id) the policy belongs to.';
comment on column mlops.promotion_policies.alias is 'Alias the policy guards: mlops.set_alias checks the rules before moving it.';
comment on column mlops.promotion_policies.rules is 'Non-empty JSON array of rule objects of kind metric, min_time_under_alias, max_p95_latency_ms, no_open_drift_alert, experiment_passed or check (see mlops.set_promotion_policy).';
comment on column mlops.promotion_policies.updated_at is 'When the policy was last set.';
comment on column mlops.promotion_policies.updated_by is 'Role (current_user) that last set it.';

comment on column mlops.training_job_queue.id is 'Training job id.';
comment on column mlops.training_job_queue.model_id is 'Model (mlops.models.id) the job trains a version of.';
comment on column mlops.training_job_queue.config is 'JSON object handed to the worker; becomes the new version''s params unless the worker gives others, and its training_set key the lineage.';
comment on column mlops.training_job_queue.status is 'queued, running (leased by a worker), succeeded, failed or cancelled.';
comment on column mlops.training_job_queue.worker is 'Name of the worker that claimed the job last; null while queued (cleared when an expired lease requeues it).';
comment on column mlops.training_job_queue.attempts is 'Number of times the job has been claimed.';
comment on column mlops.training_job_queue.max_attempts is 'Claims allowed: a lease expiring on the last attempt fails the job instead of requeuing it (default 3).';
comment on column mlops.training_job_queue.lease_seconds is 'Lease length in seconds, granted at claim and renewed by every report_progress (default 300).';
comment on column mlops.training_job_queue.lease_until is 'End of the running attempt''s lease, after which the job is requeued; null unless running.';
comment on column mlops.training_job_queue.progress is 'Progress reported by the worker, from 0 to 1 (1 once succeeded).';
comment on column mlops.training_job_queue.metrics is 'Metrics reported so far, a JSON object of numbers merged from report_progress and complete_training_job.';
comment on column mlops.training_job_queue.error is 'Failure message (fail_training_job, or lease expired on the last attempt) or cancellation reason; null otherwise.';
comment on column mlops.training_job_queue.version_id is 'Model version (mlops.model_versions.id) created by complete_training_job; null until the job succeeds.';
comment on column mlops.training_job_queue.submitted_at is 'When the job was submitted.';
comment on column mlops.training_job_queue.submitted_by is 'Role (current_user) that submitted it.';
comment on column mlops.training_job_queue.started_at is 'When the latest attempt was claimed; null before the first claim.';
comment on column mlops.training_job_queue.heartbeat_at is 'Last claim or progress report of the worker; null before the first claim.';
comment on column mlops.training_job_queue.finished_at is 'When the job succeeded, failed or was cancelled; null while queued or running.';

comment on column mlops.training_job_logs.job_id is 'Training job (mlops.training_job_queue.id) the line belongs to.';
comment on column mlops.training_job_logs.at is 'Wall-clock time the line was written (clock_timestamp).';
comment on column mlops.training_job_logs.worker is 'Worker the line is about: the job''s worker for progress and cancellation lines, the worker argument of fail_training_job for failure lines; null when none.';
comment on column mlops.training_job_logs.progress is 'Progress (0 to 1) reported with the line; null when none was given.';
comment on column mlops.training_job_logs.line is 'Log text from report_progress, or ''failed: <error>'' / ''cancelled: <reason>'' written by fail_training_job and cancel_training_job.';
