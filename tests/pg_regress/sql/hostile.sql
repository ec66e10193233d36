-- A hostile client holding a valid token for Shaun tries every door into Mary's side project.
\c - postgres
SELECT t.id AS managed FROM nile_auth.tenants t JOIN nile_auth.tenant_users tu ON tu.tenant_id = t.id
  JOIN nile_auth.users u ON u.id = tu.user_id WHERE u.email = 'shaun@clustify.dev' AND t.name = 'Managed Expenses' \gset
SELECT t.id AS side FROM nile_auth.tenants t JOIN nile_auth.tenant_users tu ON tu.tenant_id = t.id
  JOIN nile_auth.users u ON u.id = tu.user_id WHERE u.email = 'mary@clustify.dev' AND t.name = 'side project' \gset
SELECT id AS toy FROM clustify.clusters WHERE name = 'toy' \gset
SELECT id AS mary_id FROM nile_auth.users WHERE email = 'mary@clustify.dev' \gset

\c - clustify_web
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt' AS shaun \gset
-- A forged token: Shaun's, with sub changed to Mary, signature kept.
SELECT split_part(:'shaun', '.', 1) || '.' ||
       test_util.b64url(convert_to((test_util.jwt_part(:'shaun', 2) || jsonb_build_object('sub', :'mary_id'))::text, 'utf8')) ||
       '.' || split_part(:'shaun', '.', 3) AS forged \gset
SELECT test_util.try(format('SELECT nile_auth.authenticate(%L)', :'forged')) AS authenticate_forged;
SET nile.auth_token = :'forged';
SET nile.tenant_id = :'side';
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS forged_token_in_setting;
-- Garbage in the token setting.
SET nile.auth_token = 'garbage';
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS garbage_token;
-- No token at all: this role may not act as a trusted backend.
RESET nile.auth_token;
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS no_token;
SELECT nile_auth.is_trusted_backend() AS trusted;
-- ... and cannot switch that off.
SELECT test_util.try('SET nile_auth.require_token = off') AS set_off;
SELECT test_util.try('RESET nile_auth.require_token') AS reset;
SELECT test_util.try('SET SESSION AUTHORIZATION clustify_owner') AS become_owner;
SELECT test_util.try('SET ROLE clustify_owner') AS set_role_owner;
-- A malformed tenant id is an error, not a crash and not "no tenant".
SET nile.tenant_id = 'not-a-uuid';
SELECT test_util.try('SELECT nile_auth.tenant_id()') AS malformed_tenant;
-- Inside his own tenant, with his own token:
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SET nile.tenant_id = :'managed';
SELECT test_util.try(format('INSERT INTO clustify.clusters (name, tenant_id) VALUES (%L, %L)', 'planted', :'side')) AS insert_foreign_tenant;
SELECT test_util.try(format('UPDATE clustify.clusters SET tenant_id = %L', :'side')) AS move_rows_out;
SELECT test_util.try(format('INSERT INTO clustify.clusters (id, name) VALUES (%L, %L) ON CONFLICT (id) DO UPDATE SET name = %L', :'toy', 'x', 'pwned')) AS upsert_onto_toy;
-- A leaky function in WHERE sees only rows the policy lets through (it is not LEAKPROOF).
CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'saw %', t; RETURN true; END $$;
SELECT count(*) FILTER (WHERE name = 'toy') AS toy_rows FROM clustify.clusters WHERE pg_temp.leak(name);
-- RESET ALL / DISCARD ALL leave no identity and no tenant behind.
DISCARD ALL;
SELECT nile_auth.user_id() IS NULL AS no_identity, nile_auth.tenant_id() IS NULL AS no_tenant;
SELECT count(*) AS after_discard FROM clustify.clusters;
-- Fail closed: with a token but no tenant, reads see nothing and writes are refused, with an
-- error that says why (55000 "no tenant is set", not a policy violation), whether or not the
-- row names its tenant.
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SELECT test_util.try($$INSERT INTO clustify.clusters (name) VALUES ('no tenant')$$) AS insert_without_tenant;
SELECT test_util.try(format('INSERT INTO clustify.clusters (name, tenant_id) VALUES (%L, %L)', 'named', :'managed')) AS insert_naming_tenant;
SELECT test_util.try($$INSERT INTO clustify.clusters (name, tenant_id) VALUES ('null', NULL)$$) AS insert_null_tenant;
WITH u AS (UPDATE clustify.clusters SET name = 'x' RETURNING 1) SELECT count(*) AS updated_without_tenant FROM u;
-- Each per-request error says what to do, in pool-safe forms only (never a session-level SET).
CREATE FUNCTION pg_temp.hint(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT; RETURN SQLSTATE || ': ' || h;
END $$;
SELECT pg_temp.hint($$INSERT INTO clustify.clusters (name) VALUES ('no tenant')$$) AS no_tenant_hint;
SELECT pg_temp.hint(format('SELECT nile_auth.set_tenant(%L, true)', :'side')) AS not_a_member_hint;
RESET nile.auth_token;
SELECT pg_temp.hint(format('SELECT nile_auth.set_tenant(%L, true)', :'managed')) AS no_token_hint;
-- With neither token nor tenant, a write is refused for the missing identity first (401, not 409).
SELECT test_util.try($$INSERT INTO clustify.clusters (name) VALUES ('nobody')$$) AS insert_without_token_or_tenant;

-- The table owner (not a superuser) is bound by the policy too (FORCE), and so are views and
-- SECURITY DEFINER functions it writes.
\c - clustify_owner
CREATE VIEW clustify.all_clusters AS SELECT * FROM clustify.clusters;
CREATE FUNCTION clustify.count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM clustify.clusters';
GRANT SELECT ON clustify.all_clusters TO clustify_web;
SELECT count(*) AS owner_without_tenant FROM clustify.clusters;
-- Owning a table grants no trust: without a token, the owner cannot pick a tenant.
SET nile.tenant_id = :'managed';
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS owner_picks_tenant;
RESET nile.tenant_id;
\c - clustify_web
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SET nile.tenant_id = :'managed';
SELECT name FROM clustify.all_clusters ORDER BY name;
SELECT clustify.count_all() AS via_definer_function;
-- A trusted backend (a member of nile_auth_backend, here the owner once granted it) may use any
-- tenant (Nile's developer); the web role may not.
\c - postgres
GRANT nile_auth_backend TO clustify_owner;
\c - clustify_owner
SET nile.tenant_id = :'managed';
SELECT name FROM clustify.clusters ORDER BY name;
SET nile.tenant_id = :'side';
SELECT name FROM clustify.clusters;
-- Trusted or not, a write needs a tenant.
RESET nile.tenant_id;
SELECT test_util.try(format('INSERT INTO clustify.clusters (name, tenant_id) VALUES (%L, %L)', 'job', :'side')) AS backend_insert_without_tenant;
\c - postgres
REVOKE nile_auth_backend FROM clustify_owner;
-- The identity nile_auth forwards to Citus workers in place of the token is nile_auth's to set:
-- a client's is refused (42501). On a connection named as Citus names its own, it is taken, and
-- without Citus it proves nothing (28000).
\c - clustify_web
SELECT test_util.try($$SET nile_auth.forwarded_identity = 'a.b.c'$$) AS forwarded_by_hand;
SELECT test_util.try($$SELECT set_config('nile_auth.forwarded_identity', 'a.b.c', false)$$) AS forwarded_through_set_config;
SELECT 'application_name=''citus_internal gpid=10000000001''' AS citus_name \gset
\c -reuse-previous=on :citus_name
SET nile_auth.forwarded_identity = 'a.b.c';
SET nile.tenant_id = :'side';
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS forwarded_without_citus;
