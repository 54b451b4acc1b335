-- Grants of drift detection: readers see results and use the statistics, admins define and run monitors.
grant select on mlops.drift_summary to mlops_reader;
grant execute on function
  mlops.ks_2samp(double precision[], double precision[]),
  mlops.wasserstein(double precision[], double precision[]),
  mlops.js_distance(double precision[], double precision[], double precision),
  mlops.js_distance(text[], text[], double precision),
  mlops.chi2_test(double precision[], double precision[]),
  mlops.chi2_test(text[], text[]),
  mlops.z_test_proportions(bigint, bigint, bigint, bigint),
  mlops.psi_binned(double precision[], double precision[]),
  mlops.psi(double precision[], double precision[], integer),
  mlops.histogram(double precision, double precision[]),
  mlops.psi_agg(double precision, text, text)
  to mlops_reader;
grant select on mlops.drift_profiles, mlops.drift_monitors, mlops.drift_runs, mlops.drift_results to mlops_reader;
grant execute on function
  mlops.create_reference_profile(text, text, text, text, timestamptz, timestamptz, text[], integer, integer, integer, boolean),
  mlops.create_drift_monitor(text, text, text, text, text, interval, jsonb, jsonb, double precision, interval, text, boolean),
  mlops.run_drift_monitor(text),
  mlops.run_due_monitors()
  to mlops_admin;
grant select, insert, update, delete on mlops.drift_profiles, mlops.drift_profile_vectors, mlops.drift_monitors,
  mlops.drift_runs, mlops.drift_results to mlops_admin;
-- Private helpers the public functions call (no SECURITY DEFINER: monitors run user queries
-- with the caller's rights): pure computations and query builders, safe for readers.
do $grants$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure from pg_catalog.pg_proc p
     where p.pronamespace = 'mlops'::regnamespace
       and p.proname in ('_check_sample', '_lgamma_half', '_gammaq', '_ks_exact_pvalue', '_kolmogorov_sf', '_bin_counts',
                         '_drift_levels', '_drift_num', '_drift_scan_exprs', '_drift_current_exprs', '_drift_default_thresholds',
                         '_wasserstein_quantiles', '_ks_quantiles', '_drift_nn_index_name', '_drift_nn_sql', '_drift_nn_probes')
  loop
    execute pg_catalog.format('grant execute on function %s to mlops_reader', fn);
  end loop;
  for fn in
    select p.oid::regprocedure from pg_catalog.pg_proc p
     where p.pronamespace = 'mlops'::regnamespace
       and p.proname in ('_drift_source', '_drift_columns', '_drift_scan', '_drift_result', '_drift_nn_index', '_drift_nn_exec')
  loop
    execute pg_catalog.format('grant execute on function %s to mlops_admin', fn);
  end loop;
end
$grants$;
-- Monitors raise and resolve alerts as the calling admin (shared alert machinery of the core).
grant execute on function mlops._raise_alert(text, text, text, text, jsonb), mlops._check_name(text, text) to mlops_admin;
grant insert on mlops.alerts to mlops_admin;
-- Aggregates are not covered by tail.sql's revoke loop (functions and procedures): nothing for PUBLIC.
revoke all on function mlops.histogram(double precision, double precision[]),
  mlops.psi_agg(double precision, text, text) from public;
