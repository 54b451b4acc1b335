-- Grants of the core. Each capability has its own 9NN-grants-<domain>.sql; they run
-- last, after every object exists. PUBLIC gets nothing (see tail.sql).
grant usage on schema mlops, mlops_features to mlops_reader;
grant execute on function mlops.version(), mlops.info() to mlops_reader;
grant select on mlops.alert_log to mlops_reader;
grant execute on function mlops.resolve_alerts(text, text) to mlops_admin;
grant select, update on mlops.alerts to mlops_admin;
