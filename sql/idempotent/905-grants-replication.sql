-- Grants of the replication status view (010-replication.sql).
grant select on mlops.replication_status to mlops_reader;
