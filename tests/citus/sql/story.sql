-- The Clustify story on Citus, with the per-transaction context of pooled applications
-- (set_context, authenticate(…, true), set_tenant(…, true)): the rows live on the workers, where
-- the policies run; `worker` shows the row was read there.
\c - clustify_web
SELECT nile_auth.signup('shaun@clustify.dev', 'shaun password 1', 'Shaun')->'token'->>'jwt' AS shaun \gset
SELECT nile_auth.signup('mary@clustify.dev', 'mary password 1', 'Mary')->'token'->>'jwt' AS mary \gset
BEGIN;
SELECT nile_auth.authenticate(:'shaun', true) IS NOT NULL AS shaun_in;
SELECT nile_auth.create_tenant('Managed Expenses')->>'id' AS managed \gset
SELECT nile_auth.add_member(:'managed', 'mary@clustify.dev')->'roles' AS mary_roles;
COMMIT;
BEGIN;
SELECT nile_auth.authenticate(:'mary', true) IS NOT NULL AS mary_in;
SELECT nile_auth.create_tenant('side project')->>'id' AS side \gset
COMMIT;
-- Shaun creates MyFirstCluster in Managed Expenses.
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
INSERT INTO clustify.clusters (name) VALUES ('MyFirstCluster') RETURNING name, tenant_id = :'managed' AS in_managed;
INSERT INTO clustify.nodes (tenant_id, host) VALUES (:'managed', 'node-1');
COMMIT;
-- Mary sees it, edits it and adds dev.
BEGIN;
SELECT nile_auth.authenticate(:'mary', true) IS NOT NULL AS mary_in;
SELECT nile_auth.set_tenant(:'managed', true) IS NOT NULL AS tenant_set;
SELECT name, inet_server_port() <> (SELECT nodeport FROM pg_dist_node WHERE groupid = 0) AS worker,
       nile_auth.user_id() IS NOT NULL AS identity_on_worker
  FROM clustify.clusters WHERE tenant_id = :'managed';
UPDATE clustify.clusters SET name = 'MyFirstCluster v2' WHERE tenant_id = :'managed' AND name = 'MyFirstCluster';
INSERT INTO clustify.clusters (name) VALUES ('dev');
SELECT c.name, n.host FROM clustify.clusters c LEFT JOIN clustify.nodes n USING (tenant_id) WHERE c.tenant_id = :'managed' ORDER BY 1;
COMMIT;
-- Mary creates toy in side project.
BEGIN;
SELECT nile_auth.set_context(:'mary', :'side') IS NOT NULL AS context;
INSERT INTO clustify.clusters (name) VALUES ('toy') RETURNING id AS toy \gset
SELECT name FROM clustify.clusters ORDER BY 1;
COMMIT;
-- Shaun sees his tenant's clusters, with or without WHERE tenant_id (the policy alone fans out to
-- every shard and still shows only Managed Expenses).
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
SELECT name FROM clustify.clusters ORDER BY 1;
SELECT count(*) AS with_where FROM clustify.clusters WHERE tenant_id = :'managed';
SELECT nile_auth.list_tenants() ->> 'name' AS tenants;
SELECT email FROM nile_auth.users ORDER BY 1;
COMMIT;
-- Shaun removes Mary; at her next transaction every node refuses her Managed Expenses.
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') IS NOT NULL AS context;
SELECT nile_auth.unlink_user((SELECT id FROM nile_auth.users WHERE email = 'mary@clustify.dev')) AS removed;
COMMIT;
BEGIN;
SELECT nile_auth.authenticate(:'mary', true) IS NOT NULL AS mary_in;
SET LOCAL nile.tenant_id = :'managed';
SELECT try(format('SELECT count(*) FROM clustify.clusters WHERE tenant_id = %L', :'managed')) AS removed_member;
ROLLBACK;
