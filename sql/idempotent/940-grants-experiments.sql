-- Grants of experiments. Functions are SECURITY INVOKER: roles get the table rights the
-- functions they may call need. Readers analyse, writers assign/route (they record first
-- exposures), admins create, start, pause, change traffic and conclude.
grant select on mlops.experiments, mlops.experiment_variants, mlops.experiment_assignments,
                mlops.experiment_history to mlops_reader;
grant select on mlops.experiments_bi, mlops.experiment_assignments_daily, mlops.experiment_results_bi to mlops_reader;
grant execute on function
  mlops._fnv1a32(text, bigint), mlops._fnv_sql(text, text, text, integer, integer),
  mlops._gb_hash_sql(text, integer, text, text, text, integer, integer), mlops.gb_hash(text, text, integer),
  mlops.gb_in_namespace(text, text, float8, float8), mlops._gb_thresholds(float8[], float8),
  mlops.gb_bucket_ranges(float8[], float8),
  mlops.gb_choose_variation(float8, float8[], float8[]), mlops.gb_hash_batch(text, text[], integer),
  mlops._lgamma(float8), mlops._norm_cdf(float8), mlops._betacf(float8, float8, float8),
  mlops._betainc(float8, float8, float8), mlops._t_two_sided_p(float8, float8), mlops._gammq(float8, float8),
  mlops.two_proportion_ztest(bigint, bigint, bigint, bigint),
  mlops.welch_ttest(float8, float8, bigint, float8, float8, bigint), mlops.srm_test(bigint[], float8[]),
  mlops.chance_to_beat(float8, float8, float8, float8),
  mlops._experiment(text, text), mlops._variant_version_id(bigint, integer), mlops._assignable(mlops.experiments),
  mlops.experiment_results(text)
  to mlops_reader;
grant insert on mlops.experiment_assignments to mlops_writer;
grant execute on function mlops.assign(text, text), mlops.assign_batch(text, text[], boolean), mlops.route(text, text),
  mlops._route(text, text), mlops.predict_routed(text, text, jsonb, text)
  to mlops_writer;
grant insert, update on mlops.experiments, mlops.experiment_variants to mlops_admin;
grant insert on mlops.experiment_history to mlops_admin;
grant execute on function
  mlops._check_variants(jsonb, bigint), mlops._experiment_event(bigint, text, text, jsonb),
  mlops._check_namespace(bigint, text, float8, float8),
  mlops.create_experiment(text, text, jsonb, text, text, text, float8[], float8, text, timestamptz, timestamptz, text),
  mlops.start_experiment(text), mlops.pause_experiment(text), mlops.set_experiment_traffic(text, float8[], float8),
  mlops.conclude_experiment(text, text, boolean, text, text)
  to mlops_admin;
