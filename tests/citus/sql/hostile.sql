-- Hostile clients on Citus: each refused on the workers, where the rows are.
\c - clustify_web
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt' AS shaun \gset
\c - postgres
SELECT id AS managed FROM nile_auth.tenants WHERE name = 'Managed Expenses' \gset
SELECT id AS side FROM nile_auth.tenants WHERE name = 'side project' \gset
\c - clustify_web
\set count_managed 'SELECT count(*) FROM clustify.clusters WHERE tenant_id = ' :'managed'
\set count_side 'SELECT count(*) FROM clustify.clusters WHERE tenant_id = ' :'side'
-- Another tenant named by hand (SET LOCAL reaches the workers): not a member (42501).
BEGIN;
SELECT nile_auth.authenticate(:'shaun', true) IS NOT NULL AS shaun_in;
SET LOCAL nile.tenant_id = :'side';
SELECT try(:'count_side') AS other_tenant;
ROLLBACK;
-- A forged token named by hand reaches the workers: 28000 there, not a trusted backend.
BEGIN;
SET LOCAL nile.auth_token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA';
SET LOCAL nile.tenant_id = :'side';
SELECT try(:'count_side') AS forged_token;
ROLLBACK;
-- Session-level context is not forwarded by Citus: the workers see no tenant, so no rows.
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in_session;
SELECT nile_auth.set_tenant(:'managed') IS NOT NULL AS tenant_set_session;
SELECT count(*) AS session_context_sees FROM clustify.clusters WHERE tenant_id = :'managed';
RESET nile.auth_token;
RESET nile.tenant_id;
-- A client that turns forwarding off: the workers see no token and no tenant, so no rows; a
-- write there is refused (28000: no identity).
BEGIN;
SET LOCAL citus.propagate_set_commands = 'none';
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
SELECT count(*) AS forwarding_off_sees FROM clustify.clusters WHERE tenant_id = :'managed';
SELECT try(format('INSERT INTO clustify.clusters (tenant_id, name) VALUES (%L, %L)', :'managed', 'unforwarded')) AS forwarding_off_writes;
ROLLBACK;
-- No context at all: no rows; a write is refused (28000: no identity).
SELECT count(*) AS no_context_sees FROM clustify.clusters WHERE tenant_id = :'managed';
SELECT try(format('INSERT INTO clustify.clusters (tenant_id, name) VALUES (%L, %L)', :'managed', 'anonymous')) AS no_context_writes;
-- A write into another tenant's shard, naming it: refused by the policy.
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
SELECT try(format('INSERT INTO clustify.clusters (tenant_id, name) VALUES (%L, %L)', :'side', 'planted')) AS planted;
SELECT try(format('UPDATE clustify.clusters SET name = %L WHERE tenant_id = %L', 'pwned', :'side')) AS update_other;
SELECT count(*) AS side_rows_seen FROM clustify.clusters WHERE tenant_id = :'side';
ROLLBACK;
-- A prepared statement reused across contexts on one connection.
PREPARE mine AS SELECT count(*) FROM clustify.clusters WHERE tenant_id = $1;
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
EXECUTE mine(:'managed');
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'shaun', NULL) IS NOT NULL AS context;
SET LOCAL nile.tenant_id = :'side';
SELECT try(format('EXECUTE mine(%L)', :'side')) AS prepared_other_tenant;
ROLLBACK;
-- A revoked signing key: its tokens stop verifying on every node at their next transaction.
\c - postgres
SELECT nile_auth.rotate_signing_key() IS NOT NULL AS rotated;
SELECT kid AS old_kid FROM nile_auth.signing_keys WHERE state = 'retired' ORDER BY activated DESC LIMIT 1 \gset
SELECT nile_auth.revoke_signing_key(:'old_kid') AS revoked;
SELECT count(DISTINCT result) AS key_sets FROM run_command_on_all_nodes($$SELECT string_agg(kid || state, ',' ORDER BY kid) FROM nile_auth.signing_keys$$);
\c - clustify_web
SELECT try(format('SELECT nile_auth.set_context(%L, %L)', :'shaun', :'managed')) AS revoked_key_on_coordinator;
BEGIN;
SET LOCAL nile.auth_token = :'shaun';
SET LOCAL nile.tenant_id = :'managed';
SELECT try(:'count_managed') AS revoked_key_on_worker;
ROLLBACK;
-- A new login signs with the new key, which every node knows.
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt' AS shaun \gset
PREPARE mine AS SELECT count(*) FROM clustify.clusters WHERE tenant_id = $1;
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
EXECUTE mine(:'managed');
COMMIT;
-- A SECURITY DEFINER function owned by a trusted backend role: Citus runs its query on the
-- workers as that role, but there a role is no trust (the connection is Citus's), so an end
-- user without a token gets 28000, as on one node. The backend role itself, on the workers,
-- needs a token too.
\c - postgres
CREATE ROLE clustify_reports LOGIN IN ROLE nile_auth_backend;
GRANT USAGE ON SCHEMA nile_auth, clustify TO clustify_reports;
GRANT SELECT ON clustify.clusters TO clustify_reports;
CREATE SCHEMA reports AUTHORIZATION clustify_reports;
GRANT USAGE ON SCHEMA reports TO clustify_web;
\c - clustify_reports
CREATE FUNCTION reports.cluster_names(t uuid) RETURNS SETOF text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog AS $$ SELECT name FROM clustify.clusters WHERE tenant_id = t $$;
GRANT EXECUTE ON FUNCTION reports.cluster_names(uuid) TO clustify_web;
BEGIN;
SET LOCAL nile.tenant_id = :'side';
SELECT try(:'count_side') AS backend_role_on_workers;
ROLLBACK;
\c - clustify_web
BEGIN;
SET LOCAL nile.tenant_id = :'side';
SELECT try(format('SELECT count(*) FROM reports.cluster_names(%L)', :'side')) AS definer_owned_by_backend_role;
ROLLBACK;
-- A parallel worker cannot tell whose connection it serves (code in a query can rename the
-- connection, and a worker does not inherit its leader's start-up name): on a Citus node, no
-- parallel worker takes a role as trust, the coordinator included.
\c - clustify_reports
SELECT nile_auth.is_trusted_backend() AS backend_in_leader;
SET force_parallel_mode = on;
SELECT nile_auth.is_trusted_backend() AS backend_in_parallel_worker;
RESET force_parallel_mode;
-- TRUNCATE skips row-level security: refused on the table's copy on each worker and on each
-- shard (which its owner may change directly with citus.enable_manual_changes_to_shards).
\c - postgres
ALTER ROLE clustify_owner SET citus.enable_manual_changes_to_shards = on;
\c - clustify_owner
SELECT DISTINCT success, result FROM run_command_on_workers($$TRUNCATE clustify.clusters$$);
SELECT DISTINCT success, regexp_replace(result, '_[0-9]+ ', '_<shard> ') AS result
  FROM run_command_on_placements('clustify.clusters', $$TRUNCATE %s$$);
\c - postgres
ALTER ROLE clustify_owner RESET citus.enable_manual_changes_to_shards;
-- Nothing the attacks tried was written.
\c - postgres
SELECT name, tenant_id = :'side' AS in_side FROM clustify.clusters ORDER BY name;
