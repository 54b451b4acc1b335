-- Grants of the registry. Functions are SECURITY INVOKER: roles get the table rights the
-- functions they may call need. PUBLIC gets nothing (tail.sql).
grant select on mlops.models, mlops.model_versions, mlops.model_aliases, mlops.alias_events,
                mlops.promotion_policies, mlops.training_job_queue, mlops.training_job_logs to mlops_reader;
grant insert, update on mlops.models, mlops.model_versions, mlops.training_job_queue to mlops_admin;
grant insert, update, delete on mlops.model_aliases, mlops.promotion_policies to mlops_admin;
grant insert on mlops.alias_events, mlops.training_job_logs to mlops_admin;
grant execute on function mlops._model_id(text), mlops._resolve_version(text, text), mlops.get_version(text, text),
                          mlops.compare_versions(text, integer, integer), mlops._signature_width(jsonb)
  to mlops_reader;
grant execute on function
  mlops.register_model(text, text, text, jsonb, boolean),
  mlops.create_model_version(text, bytea, text, text, jsonb, jsonb, jsonb, text, bigint, jsonb, text, text),
  mlops._check_linear(jsonb), mlops._sync_stages(bigint), mlops._hours_under_alias(bigint, text, bigint),
  mlops._call_check(text, text, integer), mlops._policy_failures(bigint, text, bigint), mlops._check_rules(jsonb),
  mlops.set_promotion_policy(text, text, jsonb),
  mlops._move_alias(bigint, text, bigint, text, text, boolean, jsonb),
  mlops.set_alias(text, text, integer, text, boolean), mlops.delete_alias(text, text, text),
  mlops.rollback(text, text, text), mlops.set_version_status(text, integer, text)
  to mlops_admin;
grant select on mlops.models_bi, mlops.model_versions_bi, mlops.alias_history, mlops.training_jobs to mlops_reader;
grant execute on function
  mlops._linear_params(bigint), mlops._check_features(float8[], integer), mlops._features_from_jsonb(jsonb, text[]),
  mlops.predict_sql(text, text, float8[]), mlops.predict_sql(text, text, jsonb), mlops.predict_batch_sql(text, text, float8[])
  to mlops_reader;
grant execute on function
  mlops._job(bigint), mlops.submit_training_job(text, jsonb, integer, integer), mlops.requeue_expired_training_jobs(),
  mlops.claim_training_job(text, text), mlops._running_job(bigint, text),
  mlops.report_progress(bigint, float8, jsonb, text, text),
  mlops.complete_training_job(bigint, jsonb, bytea, text, text, jsonb, jsonb, text, text, text, jsonb, text),
  mlops.fail_training_job(bigint, text, text)
  to mlops_admin;
grant execute on function mlops.transition_stage(text, integer, text, text, boolean) to mlops_admin;
grant execute on function mlops.predict_entity(text, text, text) to mlops_reader;
grant execute on function mlops.cancel_training_job(bigint, text) to mlops_admin;
