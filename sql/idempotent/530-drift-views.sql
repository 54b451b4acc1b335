-- Drift BI views (simple column types only, time column named time).
create or replace view mlops.drift_summary as
  select r.started_at as time, m.name as monitor, p.name as profile, m.model, r.id as run_id,
         d.column_name, d.column_type, d.method, d.statistic, d.p_value, d.threshold, d.drifted,
         r.share_drifted, r.dataset_drift, r.reference_rows, r.current_rows
    from mlops.drift_results d
    join mlops.drift_runs r on r.id = d.run_id
    join mlops.drift_monitors m on m.id = r.monitor_id
    join mlops.drift_profiles p on p.id = m.profile_id;
comment on view mlops.drift_summary is 'BI view: one row per drift statistic of every monitor run (column, method, value, threshold, drift flag, dataset drift share).';
comment on column mlops.drift_summary.time is 'When the monitor run started.';
comment on column mlops.drift_summary.monitor is 'Drift monitor name.';
comment on column mlops.drift_summary.profile is 'Reference profile the run compared against.';
comment on column mlops.drift_summary.model is 'Model the monitor is about (empty for plain data monitors).';
comment on column mlops.drift_summary.run_id is 'Monitor run id.';
comment on column mlops.drift_summary.column_name is 'Column checked.';
comment on column mlops.drift_summary.column_type is 'numeric, categorical or vector.';
comment on column mlops.drift_summary.method is 'Statistic: ks, chi2, z, wasserstein (normed), js, psi, centroid_cosine, dimension_share, nn_share, mmd, missing.';
comment on column mlops.drift_summary.statistic is 'Value of the statistic.';
comment on column mlops.drift_summary.p_value is 'p-value of tests (ks, chi2, z, mmd); empty for distances.';
comment on column mlops.drift_summary.threshold is 'Drift threshold: p-value below it, or distance at or above it.';
comment on column mlops.drift_summary.drifted is 'Whether this statistic flags drift.';
comment on column mlops.drift_summary.share_drifted is 'Share of the run''s columns that drifted.';
comment on column mlops.drift_summary.dataset_drift is 'Whether the run''s drift share reached the monitor''s drift_share.';
comment on column mlops.drift_summary.reference_rows is 'Rows in the reference profile.';
comment on column mlops.drift_summary.current_rows is 'Rows of current data in the run.';
