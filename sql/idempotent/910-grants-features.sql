-- Grants of the feature store. Group tables get their grants when created
-- (mlops_reader: select; mlops_writer: insert into history, write online).
grant select on mlops.feature_groups, mlops.features, mlops.feature_freshness, mlops.training_set_lineage to mlops_reader;
grant select on mlops.entities, mlops.feature_group_versions, mlops.feature_defs, mlops.aggregate_features,
                mlops.training_sets to mlops_reader;
grant execute on function mlops.get_online_features(text, text[], text[]), mlops.online_query(text, text[], text),
                          mlops.validate_features(text), mlops._feature_refs(text[], text[]),
                          mlops._feature_group(text), mlops._key_sqltype(text), mlops._feature_value_sql(text, text, text, text),
                          mlops._feature_newest_event(text), mlops._vector_schema(), mlops._feature_sqltype(jsonb)
  to mlops_reader;
grant execute on function mlops.write_features(text, jsonb), mlops.purge_expired(), mlops.check_freshness(),
                          mlops._feature_online_sync()
  to mlops_writer;
grant execute on function mlops.create_entity(text, text, text, text),
                          mlops.create_feature_group(text, text, json, interval, text, text, interval, boolean),
                          mlops.create_aggregate_feature(text, text, text, text, interval),
                          mlops.create_training_set(text, text, text[], text),
                          mlops._normalize_features(json, text), mlops._feature_group_trigger(bigint)
  to mlops_admin;
grant insert, update on mlops.entities, mlops.feature_group_versions, mlops.feature_defs, mlops.aggregate_features,
                        mlops.training_sets to mlops_admin;
grant create on schema mlops_features to mlops_admin;
grant execute on function mlops._check_name(text, text) to mlops_reader;
