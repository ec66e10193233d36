-- Real data made through the PREVIOUS release's functions (run against it, before the update):
-- users with passwords, tenants, memberships with roles and metadata, a tenant-isolated
-- application table with rows in several tenants, API keys, a rotated signing key, audit
-- entries and a locked account. Secrets (passwords, tokens, API keys) go to a superuser-only
-- table, upgrade_fixture.secrets, for verify.sql; they are never printed.
\set ON_ERROR_STOP 1
CREATE EXTENSION nile_auth;
SELECT installed_version = default_version AS installed_the_packaged_version FROM pg_available_extensions WHERE name = 'nile_auth';

CREATE SCHEMA upgrade_fixture;
CREATE TABLE upgrade_fixture.secrets (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE upgrade_fixture.facts (name text PRIMARY KEY, value text NOT NULL);
-- 'ok' or the SQLSTATE of a statement (its writes rolled back with the subtransaction).
CREATE FUNCTION upgrade_fixture.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
-- Acts as the user whose token is stored under `who` (session setting, as 0.1.0 documents).
CREATE FUNCTION upgrade_fixture.act_as(who text) RETURNS boolean LANGUAGE sql AS $$
    SELECT set_config('nile.auth_token', (SELECT value FROM upgrade_fixture.secrets WHERE name = who || '_token'), false) IS NOT NULL $$;

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_owner') THEN
        CREATE ROLE upgrade_owner LOGIN;    -- owns the application table; not a superuser
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_web') THEN
        CREATE ROLE upgrade_web LOGIN;      -- the web tier: end users with tokens
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_auditor') THEN
        CREATE ROLE upgrade_auditor;        -- has a DBA's permissive policy on shop.orders
    END IF;
END $$;
GRANT USAGE ON SCHEMA nile_auth TO upgrade_owner, upgrade_web;
GRANT USAGE ON SCHEMA upgrade_fixture TO upgrade_web;  -- for try(); the tables stay private
-- 0.1.0's way to make a role end-user only.
ALTER ROLE upgrade_web IN DATABASE nile_auth_upgrade SET nile_auth.require_token = on;

-- Users and their first tenants, as the trusted backend (0.1.0: a session without a token).
INSERT INTO upgrade_fixture.secrets VALUES
    ('ann_password', 'ann password 1'), ('ben_password', 'ben password 1'),
    ('cat_password', 'cat password 1'), ('dan_password', 'dan password 1'),
    ('lou_password', 'lou password 1');
INSERT INTO upgrade_fixture.secrets
SELECT who || '_token', nile_auth.signup(who || '@upgrade.test', (SELECT value FROM upgrade_fixture.secrets WHERE name = who || '_password'),
                                         initcap(who), tenant)->'token'->>'jwt'
  FROM (VALUES ('ann', 'Acme'), ('ben', 'Bolt'), ('cat', NULL), ('dan', NULL), ('lou', 'Lou Ltd')) AS u(who, tenant);
SELECT email, name FROM nile_auth.users ORDER BY email;

-- Memberships with roles and metadata; one that ended.
SELECT upgrade_fixture.act_as('ann');
SELECT nile_auth.add_member(t.id, 'cat@upgrade.test', '{admin}', '{"team": "ops"}') - 'tenantId' - 'userId' AS cat_in_acme
  FROM nile_auth.tenants t WHERE name = 'Acme';
SELECT nile_auth.add_member(t.id, 'dan@upgrade.test') - 'tenantId' - 'userId' AS dan_in_acme
  FROM nile_auth.tenants t WHERE name = 'Acme';
SELECT nile_auth.add_member(t.id, 'lou@upgrade.test') - 'tenantId' - 'userId' AS lou_in_acme
  FROM nile_auth.tenants t WHERE name = 'Acme';
SELECT nile_auth.unlink_user(u.id, t.id) AS lou_left_acme
  FROM nile_auth.tenants t, nile_auth.users u WHERE t.name = 'Acme' AND u.email = 'lou@upgrade.test';
SELECT upgrade_fixture.act_as('ben');
SELECT nile_auth.add_member(t.id, 'dan@upgrade.test', '{member,billing}', '{"seat": 7}') - 'tenantId' - 'userId' AS dan_in_bolt
  FROM nile_auth.tenants t WHERE name = 'Bolt';
SELECT nile_auth.create_tenant('Bolt Labs')->>'name' AS second_tenant_of_ben;
RESET nile.auth_token;

-- API keys: one for every tenant of ann, one bound to Acme, and one of dan's, revoked.
SELECT upgrade_fixture.act_as('ann');
INSERT INTO upgrade_fixture.secrets SELECT 'ann_key', nile_auth.create_api_key('ci')->>'key';
INSERT INTO upgrade_fixture.secrets
SELECT 'ann_acme_key', nile_auth.create_api_key('acme bot', t.id)->>'key' FROM nile_auth.tenants t WHERE name = 'Acme';
SELECT upgrade_fixture.act_as('dan');
INSERT INTO upgrade_fixture.secrets SELECT 'dan_key', nile_auth.create_api_key('old laptop')->>'key';
SELECT nile_auth.revoke_api_key(id) AS dan_key_revoked FROM nile_auth.list_api_keys() k, LATERAL (SELECT (k->>'id')::uuid AS id) x;
RESET nile.auth_token;

-- The signing key is rotated: the tokens above were signed by the first key, later ones by
-- the second; both keys verify.
INSERT INTO upgrade_fixture.facts SELECT 'first_kid', kid FROM nile_auth.signing_keys;
INSERT INTO upgrade_fixture.facts SELECT 'second_kid', nile_auth.rotate_signing_key();
INSERT INTO upgrade_fixture.secrets
SELECT 'ben_token_second_key', nile_auth.login('ben@upgrade.test', 'ben password 1')->'token'->>'jwt';
SELECT count(*) AS signing_keys, count(*) FILTER (WHERE retired IS NULL) AS active FROM nile_auth.signing_keys;

-- Lou's account locks after five wrong passwords (counted by 0.1.0's lockout worker).
SELECT upgrade_fixture.try(format('SELECT nile_auth.login(%L, %L)', 'lou@upgrade.test', 'wrong password ' || n)) AS wrong_password
  FROM generate_series(1, 5) n;
SELECT upgrade_fixture.try($$SELECT nile_auth.login('lou@upgrade.test', 'lou password 1')$$) AS right_password_while_locked;
SELECT c.failed_logins, c.locked_until > now() AS locked
  FROM nile_auth.credentials c JOIN nile_auth.users u ON u.id = c.user_id WHERE u.email = 'lou@upgrade.test';

-- A tenant-isolated application table, owned by a plain role.
CREATE SCHEMA shop AUTHORIZATION upgrade_owner;
GRANT USAGE ON SCHEMA shop TO upgrade_web;
\c - upgrade_owner
CREATE TABLE shop.orders (id serial PRIMARY KEY, item text NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.orders TO upgrade_web;
GRANT USAGE ON SEQUENCE shop.orders_id_seq TO upgrade_web;
SELECT nile_auth.enable_tenant_isolation('shop.orders');
-- A DBA's permissive policy beside it, which 0.1.0 allowed: the update must name it, not fail.
CREATE POLICY auditors ON shop.orders FOR SELECT TO upgrade_auditor USING (true);
-- Rows in three tenants, written by end users through the web role.
\c - upgrade_web
SELECT set_config('nile.auth_token', (SELECT nile_auth.login('ann@upgrade.test', 'ann password 1')->'token'->>'jwt'), false) IS NOT NULL AS ann_in;
SELECT nile_auth.set_tenant(id) IS NOT NULL AS in_acme FROM nile_auth.tenants WHERE name = 'Acme';
INSERT INTO shop.orders (item) VALUES ('acme anvil'), ('acme rocket'), ('acme magnet');
SELECT set_config('nile.auth_token', (SELECT nile_auth.login('ben@upgrade.test', 'ben password 1')->'token'->>'jwt'), false) IS NOT NULL AS ben_in;
SELECT nile_auth.set_tenant(id) IS NOT NULL AS in_bolt FROM nile_auth.tenants WHERE name = 'Bolt';
INSERT INTO shop.orders (item) VALUES ('bolt nut'), ('bolt washer');
SELECT nile_auth.set_tenant(id) IS NOT NULL AS in_bolt_labs FROM nile_auth.tenants WHERE name = 'Bolt Labs';
INSERT INTO shop.orders (item) VALUES ('lab coat');
SELECT item FROM shop.orders ORDER BY item;
\c - postgres

-- What the update must keep.
SELECT t.name AS tenant, u.email, tu.roles, tu.metadata, tu.deleted IS NOT NULL AS ended
  FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id JOIN nile_auth.users u ON u.id = tu.user_id
 ORDER BY t.name, u.email;
SELECT t.name AS tenant, count(*) AS orders FROM shop.orders o JOIN nile_auth.tenants t ON t.id = o.tenant_id GROUP BY t.name ORDER BY 1;
SELECT event, count(*) FROM nile_auth.audit_log GROUP BY event ORDER BY event;
INSERT INTO upgrade_fixture.facts
SELECT 'audit_digest', md5(string_agg(a::text, ',' ORDER BY a.id)) FROM nile_auth.audit_log a;
INSERT INTO upgrade_fixture.facts SELECT 'last_audit_id', id::text FROM nile_auth.audit_log ORDER BY id DESC LIMIT 1;
