-- Column comments of the embedding tables (BI tools show them as column descriptions).
comment on column mlops.embedding_cache.model_version_id is 'Embedding model version (mlops.model_versions.id) that computed the vector.';
comment on column mlops.embedding_cache.content_sha256 is 'Hex sha256 of the UTF-8 text (mlops.content_sha256); the text itself is not stored.';
comment on column mlops.embedding_cache.embedding is 'Embedding vector, of the model version''s dimension (checked when stored).';
comment on column mlops.embedding_cache.created_at is 'When the entry was last stored.';
comment on column mlops.embedding_cache.expires_at is 'From this time on lookups ignore the entry and mlops.purge_embedding_cache deletes it (default 7 days after storing).';

comment on column mlops.embedding_syncs.id is 'Sync id, the argument of its source triggers and mlops.embedding_queue.sync_id.';
comment on column mlops.embedding_syncs.name is 'Unique sync name; its triggers on the source are mlops_embed_<name>_ins, _upd and _del.';
comment on column mlops.embedding_syncs.source_table is 'Source table whose rows are embedded (it must have a primary key).';
comment on column mlops.embedding_syncs.key_columns is 'Primary-key columns of the source in key order, keying queue entries and destination rows.';
comment on column mlops.embedding_syncs.text_columns is 'Source columns whose change re-embeds a row: the columns given, or the {column} placeholders of template.';
comment on column mlops.embedding_syncs.template is 'Text template with {column} placeholders building the embedded text; null when columns were given (their values joined by newlines).';
comment on column mlops.embedding_syncs.metadata_columns is 'Source columns copied into the destination''s metadata jsonb, updated in place without re-embedding; {} when none.';
comment on column mlops.embedding_syncs.text_sql is 'Generated SQL expression over source alias s yielding the text to embed (internal).';
comment on column mlops.embedding_syncs.model_version_id is 'Embedding model version (mlops.model_versions.id) of the current generation.';
comment on column mlops.embedding_syncs.destination is 'Schema-qualified view that readers query, pointing at physical_table.';
comment on column mlops.embedding_syncs.physical_table is 'Schema-qualified table of the current generation (<destination>_g<generation>).';
comment on column mlops.embedding_syncs.generation is 'Current generation number: 1 at creation, incremented at each model cutover.';
comment on column mlops.embedding_syncs.building_model_version_id is 'Model version (mlops.model_versions.id) of the generation mlops.alter_embedding_sync is building; null when none.';
comment on column mlops.embedding_syncs.building_table is 'Table of the generation being built (<destination>_g<generation + 1>); null when none.';
comment on column mlops.embedding_syncs.max_attempts is 'Failed attempts after which a queue row is marked failed and no longer claimed (default 3).';
comment on column mlops.embedding_syncs.created_at is 'When the sync was created.';
comment on column mlops.embedding_syncs.switched_at is 'When the destination last switched to a new generation (the creation time before the first cutover).';

comment on column mlops.embedding_queue.id is 'Queue entry id; workers claim entries in id order.';
comment on column mlops.embedding_queue.sync_id is 'Sync (mlops.embedding_syncs.id) the entry belongs to.';
comment on column mlops.embedding_queue.target is 'Generation to write: current (the destination''s table) or building (the generation being built).';
comment on column mlops.embedding_queue.key is 'Primary key of the source row as a JSON object {key column: value}.';
comment on column mlops.embedding_queue.enqueued_at is 'When the row was last queued (a change to a queued row re-queues it).';
comment on column mlops.embedding_queue.attempts is 'Failed embedding attempts so far; reset to 0 when the row is re-queued or retried.';
comment on column mlops.embedding_queue.next_attempt_at is 'Workers claim the entry from this time on; after a failure now() + 2^attempts seconds (exponential backoff).';
comment on column mlops.embedding_queue.last_error is 'Error of the last failed attempt; null until an attempt fails, cleared when the source row is re-queued.';
comment on column mlops.embedding_queue.failed_at is 'When attempts reached the sync''s max_attempts and the entry stopped being claimed (see mlops.embedding_errors); null while pending.';
