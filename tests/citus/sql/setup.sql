-- Citus: nile_auth's tables become reference tables, one copy on every node (nile_auth.distribute()).
CREATE EXTENSION nile_auth;
SELECT nile_auth.distribute() AS distributed;
SELECT nile_auth.distribute() AS again;
SELECT count(*) FILTER (WHERE p.partmethod = 'n' AND p.repmodel = 't') AS reference_tables, count(*) AS tables
  FROM pg_class c LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
 WHERE c.relnamespace = 'nile_auth'::regnamespace AND c.relkind = 'r';
-- Every node holds a copy, and every copy has the coordinator's two keys, not the node's own.
SELECT count(*) AS nodes, count(DISTINCT result) AS key_sets, min(result) AS keys
  FROM run_command_on_all_nodes($$SELECT count(*) FROM nile_auth.signing_keys$$);
SELECT count(DISTINCT p.groupid) AS nodes_with_a_copy
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) WHERE s.logicalrelid = 'nile_auth.users'::regclass;

-- Errors as SQLSTATE and message, ids and shard numbers masked: they depend on the run.
CREATE FUNCTION public.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'),
                                              '_[0-9]{6,}"', '_<shard>"', 'g');
END $$;

CREATE ROLE clustify_owner LOGIN;   -- owns the application table; not a superuser
CREATE ROLE clustify_web LOGIN;     -- end users only
GRANT USAGE ON SCHEMA nile_auth TO clustify_owner, clustify_web;
CREATE SCHEMA clustify AUTHORIZATION clustify_owner;
GRANT USAGE ON SCHEMA clustify TO clustify_web;

\c - clustify_owner
-- Distributed by tenant_id, then isolated. The column is declared as enable_tenant_isolation would
-- make it (Citus refuses to alter a distribution column), and the isolation guard's TRUNCATE
-- trigger needs citus.enable_unsafe_triggers.
CREATE TABLE clustify.clusters (tenant_id uuid NOT NULL DEFAULT nile_auth.tenant_id(), id uuid NOT NULL DEFAULT gen_random_uuid(),
                                name text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('clustify.clusters', 'tenant_id');
CREATE TABLE clustify.nodes (tenant_id uuid NOT NULL DEFAULT nile_auth.tenant_id(), id uuid NOT NULL DEFAULT gen_random_uuid(),
                             host text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('clustify.nodes', 'tenant_id', colocate_with => 'clustify.clusters');
GRANT SELECT, INSERT, UPDATE, DELETE ON clustify.clusters, clustify.nodes TO clustify_web;
SET citus.enable_unsafe_triggers = on;
SELECT nile_auth.enable_tenant_isolation('clustify.clusters'), nile_auth.enable_tenant_isolation('clustify.nodes');
RESET citus.enable_unsafe_triggers;
SELECT logicalrelid, partmethod, colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'clustify.clusters'::regclass) AS colocated
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'clustify.%' ORDER BY 1;
SELECT polrelid::regclass, polname, pg_get_expr(polqual, polrelid) AS using FROM pg_policy
 WHERE polrelid IN ('clustify.clusters'::regclass, 'clustify.nodes'::regclass) ORDER BY 1;
