-- The Clustify scenario, the test of record for tenant isolation (README, "Tenancy").
\c - postgres
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clustify_owner') THEN
        CREATE ROLE clustify_owner LOGIN;   -- owns the application table; not a superuser
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clustify_web') THEN
        CREATE ROLE clustify_web LOGIN;     -- what the web tier connects as: end users only
    END IF;
END $$;
GRANT USAGE ON SCHEMA nile_auth TO clustify_owner, clustify_web;
CREATE SCHEMA clustify AUTHORIZATION clustify_owner;
GRANT USAGE ON SCHEMA clustify TO clustify_web;
-- clustify_web is not a member of nile_auth_backend, so it is an end-user role: no token, no tenant.

\c - clustify_owner
CREATE TABLE clustify.clusters (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON clustify.clusters TO clustify_web;
SELECT nile_auth.enable_tenant_isolation('clustify.clusters');
SELECT nile_auth.enable_tenant_isolation('clustify.clusters') AS idempotent;
\d clustify.clusters
SELECT polname, pg_get_expr(polqual, polrelid) AS using, pg_get_expr(polwithcheck, polrelid) AS with_check
  FROM pg_policy WHERE polrelid = 'clustify.clusters'::regclass;

\c - clustify_web
-- Shaun signs up and creates tenant "Managed Expenses".
SELECT nile_auth.signup('shaun@clustify.dev', 'shaun password 1', 'Shaun')->'token'->>'jwt' AS shaun \gset
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SELECT nile_auth.create_tenant('Managed Expenses') AS t \gset
SELECT :'t'::jsonb->>'id' AS managed \gset
SELECT :'t'::jsonb->>'name' AS tenant_name;
-- Mary signs up and creates "side project".
SELECT nile_auth.signup('mary@clustify.dev', 'mary password 1', 'Mary')->'token'->>'jwt' AS mary \gset
SELECT nile_auth.authenticate(:'mary') IS NOT NULL AS mary_in;
SELECT nile_auth.create_tenant('side project')->>'id' AS side \gset
-- Shaun adds Mary to Managed Expenses.
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SELECT nile_auth.add_member(:'managed', 'mary@clustify.dev') - 'tenantId' - 'userId' AS membership;
-- Shaun creates MyFirstCluster in Managed Expenses.
SELECT nile_auth.set_tenant(:'managed') = :'managed' AS tenant_set;
INSERT INTO clustify.clusters (name) VALUES ('MyFirstCluster') RETURNING name, tenant_id = :'managed' AS in_managed;
-- Mary sees it and edits it, and creates "dev" there.
SELECT nile_auth.authenticate(:'mary') IS NOT NULL AS mary_in;
SELECT nile_auth.set_tenant(:'managed') IS NOT NULL AS tenant_set;
SELECT name FROM clustify.clusters;
UPDATE clustify.clusters SET name = 'MyFirstCluster v2' WHERE name = 'MyFirstCluster' RETURNING name;
INSERT INTO clustify.clusters (name) VALUES ('dev');
-- Shaun sees dev.
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SELECT name FROM clustify.clusters ORDER BY name;
-- Mary creates "toy" in side project.
SELECT nile_auth.authenticate(:'mary') IS NOT NULL AS mary_in;
SELECT nile_auth.set_tenant(:'side') IS NOT NULL AS tenant_set;
INSERT INTO clustify.clusters (name) VALUES ('toy') RETURNING id AS toy \gset
SELECT name FROM clustify.clusters;

-- Shaun, with his token, can neither see nor touch toy:
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
-- ... setting nile.tenant_id to side project (42501),
SET nile.tenant_id = :'side';
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS read_side;
SELECT test_util.try(format('UPDATE clustify.clusters SET name = %L WHERE id = %L', 'pwned', :'toy')) AS update_side;
SELECT test_util.try(format('SELECT nile_auth.set_tenant(%L)', :'side')) AS set_tenant_side;
-- ... leaving it unset (no rows),
RESET nile.tenant_id;
SELECT count(*) AS unset_sees FROM clustify.clusters;
-- ... or guessing toy's id from his own tenant.
SELECT nile_auth.set_tenant(:'managed') IS NOT NULL AS tenant_set;
SELECT count(*) AS guessed FROM clustify.clusters WHERE id = :'toy';
WITH u AS (UPDATE clustify.clusters SET name = 'pwned' WHERE id = :'toy' RETURNING 1) SELECT count(*) AS updated FROM u;
WITH d AS (DELETE FROM clustify.clusters WHERE id = :'toy' RETURNING 1) SELECT count(*) AS deleted FROM d;
-- toy is untouched.
\c - postgres
SELECT name, tenant_id = :'side' AS in_side FROM clustify.clusters ORDER BY name;
