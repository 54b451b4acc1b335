-- Column comments of the feature store tables (BI tools show them as column descriptions).
comment on column mlops.feature_group_versions.id is 'Feature group version id, referenced by mlops.feature_defs.group_id and mlops.aggregate_features.group_id.';
comment on column mlops.feature_group_versions.name is 'Feature group name (at most 45 characters, so the group tables'' names fit), shared by every version of the group.';
comment on column mlops.feature_group_versions.version is 'Version number within the group (1, 2, ...); a different feature definition creates the next one.';
comment on column mlops.feature_group_versions.entity is 'Entity the rows are keyed by (mlops.entities.name).';
comment on column mlops.feature_group_versions.notify is 'Whether inserts into the group send NOTIFY mlops_features with {group, version, entity} for up to 1000 distinct keys per statement.';
comment on column mlops.feature_group_versions.description is 'Free-text description; empty string when none was given.';
comment on column mlops.feature_group_versions.source is 'Query or table the group is derived from, as given to mlops.create_feature_group (documentation only); null when not given.';
comment on column mlops.feature_group_versions.is_current is 'True for the one version per group name that reads and writes by name use; older versions are false.';
comment on column mlops.feature_group_versions.created_at is 'When this version was created.';
comment on column mlops.feature_group_versions.created_by is 'Role (current_user) that created this version.';

comment on column mlops.feature_defs.group_id is 'Feature group version (mlops.feature_group_versions.id) the feature belongs to.';
comment on column mlops.feature_defs.name is 'Feature name, also its column name in the group''s history and online tables.';
comment on column mlops.feature_defs.position is 'Order of the feature among the group''s features (1-based), the column order in the group tables.';
comment on column mlops.feature_defs.data_type is 'Feature type: int8, int4, float8, float4, bool, text, jsonb, timestamptz or vector (dimension in dims).';
comment on column mlops.feature_defs.dims is 'Dimension of a vector feature (1 to 16000); null for other types.';
comment on column mlops.feature_defs.not_null is 'Rule: values must not be null (CHECK <feature>__not_null on the history table).';
comment on column mlops.feature_defs.min_value is 'Rule: smallest allowed value of a numeric feature (CHECK <feature>__min); null = no lower bound.';
comment on column mlops.feature_defs.max_value is 'Rule: largest allowed value of a numeric feature (CHECK <feature>__max, NaN left to the finite rule); null = no upper bound.';
comment on column mlops.feature_defs.allowed is 'Rule: JSON array of the allowed values of a text or integer feature (CHECK <feature>__allowed); null = any value.';

comment on column mlops.aggregate_features.group_id is 'Feature group version (mlops.feature_group_versions.id) the aggregate is defined on; a new version of the group copies it when its feature still fits.';
comment on column mlops.aggregate_features.name is 'Aggregate name, read as ''group:name'' like a feature and unique among the group''s features and aggregates.';
comment on column mlops.aggregate_features.feature is 'Feature aggregated, or * for a count of rows.';
comment on column mlops.aggregate_features.agg is 'Aggregate function: count, sum, avg, min or max (all but count need a numeric feature).';
comment on column mlops.aggregate_features.window_size is 'Window length: the aggregate covers events in (t - window_size, t], t being now online and the spine timestamp in training sets.';
comment on column mlops.aggregate_features.created_at is 'When the aggregate was defined, or carried over to this group version.';

comment on column mlops.training_sets.id is 'Training set id.';
comment on column mlops.training_sets.name is 'Unique training set name, also the name of its table in schema mlops_features.';
comment on column mlops.training_sets.table_name is 'Table in schema mlops_features holding the materialized rows (equal to name).';
comment on column mlops.training_sets.spine is 'Spine as given: a table name or a query (select, with, values or table) supplying entity keys and timestamps.';
comment on column mlops.training_sets.timestamp_column is 'Spine column used as the point in time (the one given, else event_ts, ts or the first timestamp/date column).';
comment on column mlops.training_sets.features is 'Feature references read, as given: group:feature or group@version:feature (features or window aggregates).';
comment on column mlops.training_sets.group_versions is 'JSON object mapping each feature group read to the version number read.';
comment on column mlops.training_sets.row_count is 'Rows in the training set (one per spine row).';
comment on column mlops.training_sets.content_hash is 'Hex sha256 of ''<row_count>:<sum of hashtextextended(row::text, 0) over all rows>'', an order-independent fingerprint of the content.';
comment on column mlops.training_sets.created_at is 'When the training set was materialized.';
comment on column mlops.training_sets.created_by is 'Role (current_user) that materialized it.';
