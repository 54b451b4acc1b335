-- Column comments of the core tables (BI tools show them as column descriptions).
comment on column mlops._migration.name is 'Name of the run-once incremental file without .sql (e.g. 200-registry-core), applied at most once per database.';
comment on column mlops._migration.sha256 is 'Hex sha256 of the incremental file''s text as it was when applied.';
comment on column mlops._migration.applied_at is 'When the migration ran (start time of the installing transaction).';
