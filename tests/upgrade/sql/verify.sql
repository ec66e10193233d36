-- ALTER EXTENSION nile_auth UPDATE on the database populate.sql filled through the previous
-- release, then: nothing a user depends on was lost or changed.
ALTER EXTENSION nile_auth UPDATE;
SELECT installed_version = default_version AS updated FROM pg_available_extensions WHERE name = 'nile_auth';
-- How each 0.1.0 membership began, read from the audit log by the update (issue 10, class 6):
-- founders created their tenants, the rest were added (lou's ended membership included).
SELECT u.email, t.name, tu.origin, tu.deleted IS NOT NULL AS ended
  FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id JOIN nile_auth.tenants t ON t.id = tu.tenant_id
 ORDER BY 1, 2;

-- Trust (0.2.0): the retired nile_auth.require_token is gone from role settings; a role that was
-- a trusted backend without it (upgrade_owner, warned about above) is one only once granted
-- nile_auth_backend.
SELECT count(*) AS roles_with_require_token FROM pg_db_role_setting
 WHERE array_to_string(setconfig, ',') LIKE '%nile_auth.require_token%';
\c - upgrade_owner
SELECT nile_auth.is_trusted_backend() AS owner_trusted_before_grant;
\c - postgres
GRANT nile_auth_backend TO upgrade_owner;
\c - upgrade_owner
SELECT nile_auth.is_trusted_backend() AS owner_trusted_after_grant;
\c - postgres
REVOKE nile_auth_backend FROM upgrade_owner;

-- Every user logs in with the password they had (lou is still locked, below).
SELECT u.email, (nile_auth.login(u.email, s.value)->>'id')::uuid = u.id AS logs_in
  FROM nile_auth.users u JOIN upgrade_fixture.secrets s ON s.name = split_part(u.email, '@', 1) || '_password'
 WHERE u.email <> 'lou@upgrade.test'
 ORDER BY u.email;
SELECT upgrade_fixture.try($$SELECT nile_auth.login('ann@upgrade.test', 'not her password')$$) AS wrong_password;
SELECT upgrade_fixture.try($$SELECT nile_auth.login('lou@upgrade.test', 'lou password 1')$$) AS lou_still_locked;
SELECT nile_auth.unlock_account(id) AS lou_unlocked FROM nile_auth.users WHERE email = 'lou@upgrade.test';
SELECT nile_auth.login('lou@upgrade.test', 'lou password 1') ? 'token' AS lou_logs_in;

-- Tokens issued before the update verify, signed by either key; both keys are still there.
SELECT s.name, nile_auth.authenticate(s.value) = u.id AS verifies, test_kid.kid
  FROM upgrade_fixture.secrets s
  JOIN nile_auth.users u ON split_part(u.email, '@', 1) = split_part(s.name, '_', 1)
  CROSS JOIN LATERAL (SELECT CASE convert_from(decode(rpad(translate(split_part(s.value, '.', 1), '-_', '+/'),
                                  (length(split_part(s.value, '.', 1)) + 3) / 4 * 4, '='), 'base64'), 'utf8')::jsonb->>'kid'
                             WHEN (SELECT value FROM upgrade_fixture.facts WHERE name = 'first_kid') THEN 'first key'
                             WHEN (SELECT value FROM upgrade_fixture.facts WHERE name = 'second_kid') THEN 'second key' END) test_kid(kid)
 WHERE s.name LIKE '%\_token%'
 ORDER BY s.name;
RESET nile.auth_token;
-- 0.1.0's keys are HS256 (issue 12): the newer keeps signing, the older is retired and still
-- verifies; an ES256 standby is published for the switch.
SELECT CASE kid WHEN (SELECT value FROM upgrade_fixture.facts WHERE name = 'first_kid') THEN 'first key'
                WHEN (SELECT value FROM upgrade_fixture.facts WHERE name = 'second_kid') THEN 'second key'
                ELSE 'new' END AS key, alg, state
  FROM nile_auth.signing_keys ORDER BY created;
SELECT alg_before_rotation FROM (SELECT convert_from(decode(rpad(translate(split_part(t, '.', 1), '-_', '+/'),
                                  (length(split_part(t, '.', 1)) + 3) / 4 * 4, '='), 'base64'), 'utf8')::jsonb->>'alg'
                             FROM (SELECT nile_auth.login('ben@upgrade.test', 'ben password 1')->'token'->>'jwt') x(t)) y(alg_before_rotation);
-- Switching to ES256 logs nobody out: every token from before the update still verifies, and
-- new tokens are ES256 with a session.
SELECT nile_auth.rotate_signing_key() IS NOT NULL AS rotated_to_es256;
SELECT s.name, nile_auth.authenticate(s.value) IS NOT NULL AS verifies_after_rotation
  FROM upgrade_fixture.secrets s WHERE s.name LIKE '%\_token%' ORDER BY s.name;
RESET nile.auth_token;
SELECT nile_auth.login('ben@upgrade.test', 'ben password 1') AS ben_es \gset
SELECT convert_from(decode(rpad(translate(split_part(:'ben_es'::jsonb->'token'->>'jwt', '.', 1), '-_', '+/'),
       (length(split_part(:'ben_es'::jsonb->'token'->>'jwt', '.', 1)) + 3) / 4 * 4, '='), 'base64'), 'utf8')::jsonb->>'alg' AS new_alg,
       nile_auth.refresh(:'ben_es'::jsonb->>'refreshToken')->>'id' = :'ben_es'::jsonb->>'id' AS refreshes;
RESET nile.auth_token;
SELECT alg, state FROM nile_auth.signing_keys ORDER BY created;
-- A token from 0.1.0 has no session; logout('global') ends it too.
SELECT value AS ben_old FROM upgrade_fixture.secrets WHERE name = 'ben_token_second_key' \gset
SELECT nile_auth.authenticate(:'ben_old') IS NOT NULL AS ben_old_in;
SELECT nile_auth.logout('global') >= 1 AS logged_out_everywhere;
SELECT upgrade_fixture.try(format('SELECT nile_auth.authenticate(%L)', :'ben_old')) AS old_token_after_global_logout;
RESET nile.auth_token;

-- API keys still log in, keep their tenant, and a revoked one stays revoked.
SELECT (nile_auth.login_with_api_key(value)->>'id')::uuid = (SELECT id FROM nile_auth.users WHERE email = 'ann@upgrade.test') AS ann_key
  FROM upgrade_fixture.secrets WHERE name = 'ann_key';
SELECT id AS acme FROM nile_auth.tenants WHERE name = 'Acme' \gset
SELECT id AS bolt FROM nile_auth.tenants WHERE name = 'Bolt' \gset
SELECT id AS bolt_labs FROM nile_auth.tenants WHERE name = 'Bolt Labs' \gset
SELECT nile_auth.login_with_api_key(value)->'token'->>'jwt' AS acme_key_jwt FROM upgrade_fixture.secrets WHERE name = 'ann_acme_key' \gset
SELECT nile_auth.authenticate(:'acme_key_jwt') IS NOT NULL AS acme_key_token;
SELECT nile_auth.set_tenant(:'acme') = :'acme' AS uses_acme;
SELECT upgrade_fixture.try(format('SELECT nile_auth.set_tenant(%L)', :'bolt')) AS refused_bolt;
-- 0.1.0 memberships carry their roles into has_role() and me() (0.2.0), limited to Acme here.
SELECT nile_auth.has_role('owner') AS ann_owns_acme, nile_auth.has_role('owner', :'bolt') AS ann_owns_bolt;
SELECT m->>'name' AS tenant, m->'roles' AS roles FROM jsonb_array_elements(nile_auth.me()->'memberships') m;
RESET nile.auth_token;
RESET nile.tenant_id;
SELECT upgrade_fixture.try(format('SELECT nile_auth.login_with_api_key(%L)', value)) AS revoked_key
  FROM upgrade_fixture.secrets WHERE name = 'dan_key';
SELECT k.name, k.tenant_id IS NOT NULL AS tenant_bound, k.revoked IS NOT NULL AS revoked
  FROM nile_auth.api_keys k ORDER BY k.name;

-- Memberships, their roles and metadata, and the ended one, exactly as before.
SELECT t.name AS tenant, u.email, tu.roles, tu.metadata, tu.deleted IS NOT NULL AS ended
  FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id JOIN nile_auth.users u ON u.id = tu.user_id
 ORDER BY t.name, u.email;
-- Every audit entry written before the update is still there, unchanged.
SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) = (SELECT value FROM upgrade_fixture.facts WHERE name = 'audit_digest') AS audit_log_kept
  FROM nile_auth.audit_log a WHERE a.id <= (SELECT value::uuid FROM upgrade_fixture.facts WHERE name = 'last_audit_id');

-- The isolated table: rows, policy and row-level security as they were.
SELECT t.name AS tenant, count(*) AS orders FROM shop.orders o JOIN nile_auth.tenants t ON t.id = o.tenant_id GROUP BY t.name ORDER BY 1;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'shop.orders'::regclass;
-- The policy is 0.2.0's: its check says when no tenant is set.
SELECT polname, pg_get_expr(polqual, polrelid) AS using, pg_get_expr(polwithcheck, polrelid) AS with_check
  FROM pg_policy WHERE polrelid = 'shop.orders'::regclass;
SELECT value AS dan_password FROM upgrade_fixture.secrets WHERE name = 'dan_password' \gset
-- and isolation holds for end users: dan sees each of his tenants' rows, only there.
\c - upgrade_web
SELECT nile_auth.authenticate(nile_auth.login('dan@upgrade.test', :'dan_password')->'token'->>'jwt') IS NOT NULL AS dan_in;
SELECT upgrade_fixture.try($$INSERT INTO shop.orders (item) VALUES ('no tenant')$$) AS insert_without_tenant;
SELECT nile_auth.set_tenant(:'acme') IS NOT NULL AS in_acme;
SELECT item FROM shop.orders ORDER BY item;
INSERT INTO shop.orders (item) VALUES ('acme spring') RETURNING item, tenant_id = :'acme' AS in_acme;
SELECT upgrade_fixture.try(format($$INSERT INTO shop.orders (item, tenant_id) VALUES ('smuggled', %L)$$, :'bolt')) AS insert_into_bolt_from_acme;
SELECT nile_auth.set_tenant(:'bolt') IS NOT NULL AS in_bolt;
SELECT item FROM shop.orders ORDER BY item;
SELECT upgrade_fixture.try(format('SELECT nile_auth.set_tenant(%L)', :'bolt_labs')) AS dan_into_bolt_labs;
\c - postgres
-- A table isolated under 0.1.0 gets 0.2.0's TRUNCATE guard from the update.
SELECT tgname FROM pg_trigger WHERE tgrelid = 'shop.orders'::regclass AND NOT tgisinternal;
