-- Grants of the prediction log and monitoring.
grant select on mlops.prediction_outcomes, mlops.model_performance_hourly, mlops.prediction_label_distribution
  to mlops_reader;
grant execute on function mlops.model_performance(text, timestamptz, interval),
                          mlops.model_version_latency_p95(text, integer, timestamptz),
                          mlops.model_version_accuracy(text, integer, timestamptz) to mlops_reader;
grant select on mlops.predictions, mlops.prediction_feedback, mlops.prediction_requests to mlops_reader;

grant execute on function mlops.log_prediction(text, text, integer, text, jsonb, jsonb, float8, text, float8, float8,
                                               text, text, text, text, vector, timestamptz),
                          mlops.log_predictions(jsonb), mlops.create_prediction_staging(),
                          mlops.log_staged_predictions(), mlops.log_feedback(text, jsonb, text, float8, boolean, float8),
                          mlops._ingest_predictions(jsonb), mlops._prediction_staging(text),
                          mlops._prediction_version(text, integer, text),
                          mlops._resolve_prediction_versions(text[], integer[], text[]),
                          mlops._ensure_prediction_partition(timestamptz)
  to mlops_writer;
grant select on mlops.prediction_partitions, mlops.prediction_settings to mlops_writer;
grant insert on mlops.predictions, mlops.prediction_requests to mlops_writer;
grant insert, update on mlops.prediction_feedback to mlops_writer;
grant usage on sequence mlops.predictions_id_seq to mlops_writer;

grant execute on function mlops.configure_predictions(interval, integer, interval),
                          mlops.drop_predictions_before(timestamptz), mlops.maintain_predictions(),
                          mlops.detect_degradation(text, interval, interval, float8, float8, float8, integer)
  to mlops_admin;
grant insert, update on mlops.prediction_settings to mlops_admin;
grant execute on function mlops._prediction_settings() to mlops_reader;
