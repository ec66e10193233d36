-- API keys and the audit trail as users see it.
\c - nile_app
SELECT nile_auth.signup('kim@keys.test', 'kim password 1', 'Kim', 'kim co')->'token'->>'jwt' AS kim \gset
SELECT nile_auth.signup('lee@keys.test', 'lee password 1', 'Lee')->'token'->>'jwt' AS lee \gset
SELECT id AS kim_id FROM nile_auth.users WHERE email = 'kim@keys.test' \gset
SELECT nile_auth.authenticate(:'kim') IS NOT NULL AS kim_in;
SELECT nile_auth.me()->'tenants'->>0 AS kimco \gset
SELECT nile_auth.create_tenant('kim second')->>'id' AS second \gset

-- create_api_key shows the secret once.
SELECT nile_auth.create_api_key('ci') AS k1 \gset
SELECT array(SELECT jsonb_object_keys(:'k1'::jsonb) ORDER BY 1) AS keys,
       :'k1'::jsonb->>'key' LIKE 'nak\_%' AS recognisable,
       :'k1'::jsonb->>'prefix' = left(:'k1'::jsonb->>'key', 12) AS prefix_shown,
       length(:'k1'::jsonb->>'key') AS key_length,
       :'k1'::jsonb->'tenantId' AS tenant, :'k1'::jsonb->'expires' AS expires;
SELECT nile_auth.create_api_key('tenant bot', :'kimco', '30 days') AS k2 \gset
SELECT :'k2'::jsonb->>'tenantId' = :'kimco' AS bound_to_tenant,
       (:'k2'::jsonb->>'expires')::timestamptz > now() + interval '29 days' AS expires_in_30_days;
SELECT test_util.try($$SELECT nile_auth.create_api_key('')$$) AS empty_name;
SELECT test_util.try($$SELECT nile_auth.create_api_key(NULL)$$) AS null_name;
SELECT test_util.try(format('SELECT nile_auth.create_api_key(%L, %L)', 'x', gen_random_uuid())) AS foreign_tenant;
SELECT test_util.try($$SELECT nile_auth.create_api_key('x', NULL, '-1 day')$$) AS negative_expiry;
-- list_api_keys never shows a secret.
SELECT k->>'name' AS name, k ? 'key' AS shows_secret, k->>'prefix' = left(:'k1'::jsonb->>'key', 12) AS is_k1
  FROM nile_auth.list_api_keys() k ORDER BY k->>'created';

-- login_with_api_key: a token like login's; a tenant key's token is limited to that tenant.
RESET nile.auth_token;
SELECT test_util.try('SELECT nile_auth.create_api_key(''backend'')') AS backend_has_no_user;
SELECT nile_auth.login_with_api_key(:'k1'::jsonb->>'key') AS l1 \gset
SELECT :'l1'::jsonb->>'id' = :'kim_id' AS kims_token, :'l1'::jsonb->'token'->>'type' AS type;
SELECT nile_auth.authenticate(:'l1'::jsonb->'token'->>'jwt') = :'kim_id' AS authenticates;
SELECT nile_auth.set_tenant(:'second') IS NOT NULL AS unscoped_key_any_tenant;
RESET nile.tenant_id;
SELECT nile_auth.login_with_api_key(:'k2'::jsonb->>'key')->'token'->>'jwt' AS scoped \gset
SELECT test_util.jwt_part(:'scoped', 2)->>'tid' = :'kimco' AS tid_claim;
SELECT nile_auth.authenticate(:'scoped') = :'kim_id' AS authenticates;
SELECT nile_auth.set_tenant(:'kimco') IS NOT NULL AS own_tenant;
SELECT test_util.try(format('SELECT nile_auth.set_tenant(%L)', :'second')) AS other_tenant_of_kim;
SELECT test_util.try(format('SELECT nile_auth.rename_tenant(%L, %L)', :'second', 'x')) AS act_on_other_tenant;
RESET nile.tenant_id;
RESET nile.auth_token;
SELECT test_util.try($$SELECT nile_auth.login_with_api_key('nak_not_a_key')$$) AS unknown_key;
SELECT test_util.try('SELECT nile_auth.login_with_api_key(NULL)') AS null_key;

-- revoke_api_key: the owner (or the backend); others see no such key.
SELECT nile_auth.authenticate(:'lee') IS NOT NULL AS lee_in;
SELECT test_util.try(format('SELECT nile_auth.revoke_api_key(%L)', :'k1'::jsonb->>'id')) AS other_user_revokes;
SELECT nile_auth.authenticate(:'kim') IS NOT NULL AS kim_in;
SELECT nile_auth.revoke_api_key((:'k1'::jsonb->>'id')::uuid) AS revoked;
SELECT k->'revoked' <> 'null' AS listed_as_revoked FROM nile_auth.list_api_keys() k WHERE k->>'id' = :'k1'::jsonb->>'id';
RESET nile.auth_token;
SELECT test_util.try(format('SELECT nile_auth.login_with_api_key(%L)', :'k1'::jsonb->>'key')) AS revoked_key;
-- A locked user's key does not log in either.
SELECT nile_auth.lock_account(:'kim_id') AS locked;
SELECT test_util.try(format('SELECT nile_auth.login_with_api_key(%L)', :'k2'::jsonb->>'key')) AS locked_user_key;
SELECT nile_auth.unlock_account(:'kim_id') AS unlocked;
-- An expired key fails (expiry moved into the past as superuser).
\c - postgres
UPDATE nile_auth.api_keys SET expires = now() - interval '1 second' WHERE id = (:'k2'::jsonb->>'id')::uuid;
SELECT count(*) AS hashed_only FROM nile_auth.api_keys
 WHERE key_hash = sha256(convert_to(:'k1'::jsonb->>'key', 'UTF8'))
   AND position(:'k1'::jsonb->>'key' IN api_keys::text) = 0;
SELECT count(*) AS keys_in_audit_log FROM nile_auth.audit_log a WHERE a::text LIKE '%nak\_%';
\c - nile_app
SELECT test_util.try(format('SELECT nile_auth.login_with_api_key(%L)', :'k2'::jsonb->>'key')) AS expired_key;
SELECT test_util.try('SELECT * FROM nile_auth.api_keys') AS read_api_keys;

-- audit_events: users see their own events, owners and admins their tenant's, the backend all.
SELECT nile_auth.authenticate(:'kim') IS NOT NULL AS kim_in;
SELECT array_agg(DISTINCT e->>'event' ORDER BY e->>'event') AS kim_sees
  FROM nile_auth.audit_events() e;
SELECT bool_and(e->>'actor' = :'kim_id' OR e->>'target' = :'kim_id') AS only_own
  FROM nile_auth.audit_events() e;
SELECT array(SELECT jsonb_object_keys(e) ORDER BY 1) AS shape FROM nile_auth.audit_events(max_rows => 1) e;
SELECT array_agg(e->>'event' ORDER BY e->>'event') AS kimco_events
  FROM nile_auth.audit_events(tenant_id => :'kimco') e;
SELECT count(*) AS since_future FROM nile_auth.audit_events(since => now() + interval '1 hour');
SELECT test_util.try('SELECT nile_auth.audit_events(max_rows => 0)') AS zero_rows;
SELECT test_util.try(format('SELECT nile_auth.audit_events(user_id => %L)', gen_random_uuid())) AS someone_elses;
SELECT nile_auth.authenticate(:'lee') IS NOT NULL AS lee_in;
SELECT test_util.try(format('SELECT nile_auth.audit_events(tenant_id => %L)', :'kimco')) AS not_a_member;
RESET nile.auth_token;
SELECT count(*) > 0 AS backend_sees_kim FROM nile_auth.audit_events(user_id => :'kim_id');
SELECT count(*) AS backend_max_rows FROM nile_auth.audit_events(max_rows => 3);
