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
-- Either order works. clusters: distributed by tenant_id, then isolated; its column is declared
-- as enable_tenant_isolation would make it, since Citus refuses to alter a distribution column.
CREATE TABLE clustify.clusters (tenant_id uuid NOT NULL DEFAULT nile_auth.tenant_id(), id uuid NOT NULL DEFAULT gen_random_uuid(),
                                name text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('clustify.clusters', 'tenant_id');
SELECT nile_auth.enable_tenant_isolation('clustify.clusters');
-- nodes: isolated first. Its foreign key to nile_auth.tenants waits (NOTICE) until it is a Citus
-- table, and Citus distributes a table with a trigger (the TRUNCATE guard) only with
-- citus.enable_unsafe_triggers; the second call adds the key.
CREATE TABLE clustify.nodes (id uuid NOT NULL DEFAULT gen_random_uuid(), host text);
SELECT nile_auth.enable_tenant_isolation('clustify.nodes');
ALTER TABLE clustify.nodes ADD PRIMARY KEY (tenant_id, id);
SELECT try($$SELECT create_distributed_table('clustify.nodes', 'tenant_id', colocate_with => 'clustify.clusters')$$) AS without_unsafe_triggers;
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('clustify.nodes', 'tenant_id', colocate_with => 'clustify.clusters');
RESET citus.enable_unsafe_triggers;
SELECT nile_auth.enable_tenant_isolation('clustify.nodes');
GRANT SELECT, INSERT, UPDATE, DELETE ON clustify.clusters, clustify.nodes TO clustify_web;
SELECT logicalrelid, partmethod, colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'clustify.clusters'::regclass) AS colocated
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'clustify.%' ORDER BY 1;
SELECT polrelid::regclass, polname, pg_get_expr(polqual, polrelid) AS using FROM pg_policy
 WHERE polrelid IN ('clustify.clusters'::regclass, 'clustify.nodes'::regclass) ORDER BY 1;
SELECT conrelid::regclass, confrelid::regclass FROM pg_constraint
 WHERE conrelid IN ('clustify.clusters'::regclass, 'clustify.nodes'::regclass) AND contype = 'f' ORDER BY 1;
-- Every shard, on its worker, is isolated as its table is: row-level security forced, the
-- policy, and the TRUNCATE guard (Citus copies the first two; nile_auth's event trigger adds the
-- third, since a shard can be truncated on its node).
SELECT s.logicalrelid, r.result AS "forced|policy|guard", count(*) AS shards
  FROM pg_dist_shard s,
       LATERAL (SELECT result FROM run_command_on_placements(s.logicalrelid,
                  $$SELECT format('%%s|%%s|%%s', c.relrowsecurity AND c.relforcerowsecurity,
                                  (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'),
                                  (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_isolation_truncate' AND t.tgenabled <> 'D'))
                      FROM pg_class c WHERE c.oid = '%s'::regclass$$) p WHERE p.shardid = s.shardid) r
 WHERE s.logicalrelid IN ('clustify.clusters'::regclass, 'clustify.nodes'::regclass)
 GROUP BY 1, 2 ORDER BY 1, 2;
