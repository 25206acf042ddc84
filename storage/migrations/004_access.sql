-- requires: access-management
-- Least-privilege roles for SQL-managed ClickHouse (20.5+ with access management, migrated by an
-- account that may manage access). Grant them to users, e.g.
--   CREATE USER grafana IDENTIFIED WITH sha256_password BY '…' DEFAULT ROLE finpulse_reader;
--   GRANT finpulse_reader TO grafana;
-- ClickHouse 18.16 and chDB have no SQL access management: migrate() skips this file there (and
-- retries it on the next run, e.g. after an upgrade). docker-compose provisions its writer and
-- read-only users from deploy/clickhouse/users.d/finpulse.xml instead.
CREATE ROLE IF NOT EXISTS {db}_reader;
GRANT SELECT ON {db}.* TO {db}_reader;
CREATE ROLE IF NOT EXISTS {db}_writer;
GRANT SELECT, INSERT, CREATE TABLE, CREATE VIEW, ALTER TABLE, ALTER VIEW ON {db}.* TO {db}_writer;
