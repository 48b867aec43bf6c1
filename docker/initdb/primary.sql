-- Run once by the mariadb image on the primary's first start (docker-entrypoint-initdb.d).
-- Binary-logged, so the replicas (which start from the primary's first GTID) get it too.
CREATE USER IF NOT EXISTS 'sluice_monitor'@'%' IDENTIFIED BY 'monitor_pw';
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'sluice_monitor'@'%';
-- The heartbeat (replication lag in ms) and fleet registry tables live in `sluice`.
CREATE DATABASE IF NOT EXISTS sluice;
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON sluice.* TO 'sluice_monitor'@'%';
