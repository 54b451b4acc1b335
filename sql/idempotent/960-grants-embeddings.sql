-- Grants of the embeddings capability. Readers: views, search, cache reads (embedding the
-- same text again writes only to the cache). Writers: cache writes and sync workers.
-- Admins: model registration and sync DDL.
grant select on mlops.embedding_models, mlops.embedding_sync_status, mlops.embedding_errors,
  mlops.embedding_quality_metrics to mlops_reader;
grant select on mlops.embedding_cache, mlops.embedding_syncs to mlops_reader;
grant select, insert, update on mlops.embedding_cache to mlops_writer;
grant select, insert, update, delete on mlops.embedding_queue to mlops_writer;
-- Sync DDL writes the sync row and queues its rows; dropping a sync clears its queue.
grant select, insert, update, delete on mlops.embedding_syncs, mlops.embedding_queue to mlops_admin;
grant execute on function
  mlops._embedding_model(text), mlops._embedding_dimension(bigint), mlops.embedding_model_info(text),
  mlops.content_sha256(text), mlops._check_texts(text[], text), mlops.embedding_cache_lookup(text[], text),
  mlops._sync(text), mlops._sync_key_expr(text[], text), mlops._sync_key_join(text[], text, text),
  mlops._sync_row_count(text), mlops.similar(text, vector, integer, jsonb),
  mlops.find_duplicates(text, float8, integer), mlops.dedupe(text, float8, integer),
  mlops.embedding_quality(text) to mlops_reader;
grant execute on function
  mlops.embedding_cache_store(text[], vector[], text, interval), mlops._sync_key_match(regclass, text[]),
  mlops._sync_metadata_expr(text[], text), mlops._claim_embedding_batch(text, integer),
  mlops._apply_embedding_batch(bigint[], text), mlops._sync_try_cutover(bigint), mlops._sync_point_view(text, regclass),
  mlops.purge_embedding_cache(), mlops.retry_embedding_errors(text) to mlops_writer;
grant execute on function
  mlops.register_embedding_model(text, integer, text, text, boolean, integer, text),
  mlops.create_embedding_sync(text, regclass, text[], text, text, text, text[]),
  mlops.alter_embedding_sync(text, text), mlops.drop_embedding_sync(text), mlops.switch_embedding_sync(text),
  mlops._sync_create_table(regclass, text[], text, integer), mlops._sync_enqueue_all(mlops.embedding_syncs, text)
  to mlops_admin;
grant execute on function mlops._embedding_sync_trigger() to mlops_writer;
-- the sync DDL helpers (writer: cutover re-points the view; admin: creates tables) re-quote names through it
grant execute on function mlops._qualified_name(text, text) to mlops_writer, mlops_admin;
