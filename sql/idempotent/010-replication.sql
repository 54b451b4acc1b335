-- Replication status for BI and monitoring (issue 10 item 14; docs/replication.md).
-- One view that works on both sides: on a primary one row per connected standby (from
-- pg_stat_replication), on a standby one row about itself (receive / replay positions and the
-- time of the last replayed transaction). The details of pg_stat_replication are shown only to
-- roles with pg_read_all_stats (pg_monitor includes it): others see the rows with empty figures.
create or replace view mlops.replication_status as
  select pg_catalog.now() as time,
         'primary'::text as role,
         r.application_name::text as standby,
         pg_catalog.host(r.client_addr) as client_addr,
         r.state::text as state,
         r.sync_state::text as sync_state,
         pg_catalog.pg_wal_lsn_diff(
           case when pg_catalog.pg_is_in_recovery() then pg_catalog.pg_last_wal_replay_lsn()
                else pg_catalog.pg_current_wal_lsn() end, r.replay_lsn)::bigint as replay_lag_bytes,
         extract(epoch from r.write_lag)::float8 as write_lag_seconds,
         extract(epoch from r.flush_lag)::float8 as flush_lag_seconds,
         extract(epoch from r.replay_lag)::float8 as replay_lag_seconds,
         r.reply_time as last_activity
    from pg_catalog.pg_stat_replication r
  union all
  select pg_catalog.now(),
         'standby'::text,
         pg_catalog.current_setting('cluster_name'),
         null::text,
         w.status::text,
         null::text,
         pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::bigint,
         null::float8,
         null::float8,
         case when pg_catalog.pg_last_wal_receive_lsn() operator(pg_catalog.=) pg_catalog.pg_last_wal_replay_lsn()
              then 0::float8
              else extract(epoch from pg_catalog.now() operator(pg_catalog.-) pg_catalog.pg_last_xact_replay_timestamp())::float8
         end,
         pg_catalog.pg_last_xact_replay_timestamp()
    from (select) one
    left join pg_catalog.pg_stat_wal_receiver w on true
   where pg_catalog.pg_is_in_recovery();
comment on view mlops.replication_status is
  'Streaming replication, one view for both sides: on a primary one row per connected standby, on a standby one row '
  'about itself (role = standby). Figures of other sessions need pg_read_all_stats (pg_monitor); see docs/replication.md.';
comment on column mlops.replication_status.time is 'When the row was read (now()).';
comment on column mlops.replication_status.role is 'primary: a row per standby connected to this server; standby: this server replays WAL.';
comment on column mlops.replication_status.standby is 'Primary: the standby''s application_name (what synchronous_standby_names lists); standby: its cluster_name.';
comment on column mlops.replication_status.client_addr is 'Primary: address of the standby (empty for a Unix socket).';
comment on column mlops.replication_status.state is 'Primary: WAL sender state (streaming, catchup, ...); standby: WAL receiver status (empty while not receiving).';
comment on column mlops.replication_status.sync_state is 'Primary: sync, quorum, potential or async (sync: commits wait for it).';
comment on column mlops.replication_status.replay_lag_bytes is 'WAL bytes not yet replayed by the standby (primary: current position minus its replay position; standby: received minus replayed).';
comment on column mlops.replication_status.write_lag_seconds is 'Primary: recent time between a local flush and the standby''s write acknowledgement.';
comment on column mlops.replication_status.flush_lag_seconds is 'Primary: recent time between a local flush and the standby''s flush acknowledgement.';
comment on column mlops.replication_status.replay_lag_seconds is 'Primary: recent time until the standby replayed a commit; standby: 0 when all received WAL is replayed, else seconds since the last replayed transaction committed.';
comment on column mlops.replication_status.last_activity is 'Primary: the standby''s last reply; standby: commit time of the last replayed transaction.';
