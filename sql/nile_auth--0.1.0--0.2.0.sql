-- nile_auth 0.1.0 -> 0.2.0, run by ALTER EXTENSION nile_auth UPDATE.
--
-- Every change to a SQL object between the two versions is made here, in the same commit as
-- the change to the fresh-install SQL (sql/*.sql and the #[pg_extern] functions). The upgrade
-- test (tests/upgrade) updates a 0.1.0 database with data and fails unless the result equals
-- a fresh CREATE EXTENSION of 0.2.0. Once 0.2.0 is released (tagged), this file is frozen.
\echo Use "ALTER EXTENSION nile_auth UPDATE TO '0.2.0'" to load this file. \quit
