-- Account administration: activation, manual locks, passwords, resets, email verification.
-- Olga owns tenant "ops", Pete is a member ops created (create_tenant_user), so ops
-- administers his account (consent.sql: a user ops merely added would not be); Quinn shares no
-- tenant with them.
\c - nile_app
SELECT nile_auth.signup('olga@ops.test', 'olga password 1', 'Olga', 'ops')->'token'->>'jwt' AS olga \gset
SELECT nile_auth.signup('quinn@else.test', 'quinn password 1', 'Quinn', 'elsewhere')->'token'->>'jwt' AS quinn \gset
SELECT id AS olga_id FROM nile_auth.users WHERE email = 'olga@ops.test' \gset
SELECT id AS quinn_id FROM nile_auth.users WHERE email = 'quinn@else.test' \gset
SELECT nile_auth.authenticate(:'olga') IS NOT NULL AS olga_in;
SELECT nile_auth.me()->'tenants'->>0 AS ops \gset
SELECT nile_auth.set_tenant(:'ops') IS NOT NULL AS in_ops;
SELECT nile_auth.create_tenant_user('pete@ops.test', 'pete password 1', 'Pete')->'tenants'->>0 = :'ops' AS pete_in_ops;
RESET nile.tenant_id;
SELECT nile_auth.login('pete@ops.test', 'pete password 1')->'token'->>'jwt' AS pete \gset
SELECT id AS pete_id FROM nile_auth.users WHERE email = 'pete@ops.test' \gset

-- deactivate_user / activate_user: the backend, or an owner/admin of all the user's tenants.
SELECT nile_auth.authenticate(:'pete') IS NOT NULL AS pete_in;
SELECT test_util.try(format('SELECT nile_auth.deactivate_user(%L)', :'olga_id')) AS member_deactivates_owner;
SELECT nile_auth.authenticate(:'quinn') IS NOT NULL AS quinn_in;
SELECT test_util.try(format('SELECT nile_auth.deactivate_user(%L)', :'pete_id')) AS stranger_deactivates;
SELECT nile_auth.authenticate(:'olga') IS NOT NULL AS olga_in;
SELECT nile_auth.deactivate_user(:'pete_id') AS deactivated;
SELECT test_util.identity_under(:'pete') IS NULL AS old_token_dead;
SELECT test_util.try($$SELECT nile_auth.login('pete@ops.test', 'pete password 1')$$) AS deactivated_login;
SELECT nile_auth.activate_user(:'pete_id') AS activated;
SELECT nile_auth.login('pete@ops.test', 'pete password 1')->'token'->>'jwt' AS pete \gset
SELECT test_util.identity_under(:'pete') = :'pete_id' AS new_token_works;
RESET nile.auth_token;
SELECT test_util.try(format('SELECT nile_auth.deactivate_user(%L)', gen_random_uuid())) AS unknown_user;
SELECT test_util.try('SELECT nile_auth.deactivate_user(NULL)') AS null_user;

-- lock_account / unlock_account: trusted backend only; a lock refuses even the right password.
SELECT nile_auth.lock_account(:'pete_id') AS locked;
SELECT test_util.try($$SELECT nile_auth.login('pete@ops.test', 'pete password 1')$$) AS locked_login;
SELECT nile_auth.unlock_account(:'pete_id') AS unlocked;
SELECT nile_auth.login('pete@ops.test', 'pete password 1') ? 'token' AS logs_in;

-- change_password: needs the old password; revokes earlier tokens; returns a fresh one.
SELECT nile_auth.login('pete@ops.test', 'pete password 1')->'token'->>'jwt' AS pete \gset
SELECT nile_auth.authenticate(:'pete') IS NOT NULL AS pete_in;
SELECT test_util.try($$SELECT nile_auth.change_password('not my password', 'pete password 2')$$) AS wrong_old;
SELECT test_util.try($$SELECT nile_auth.change_password('pete password 1', 'short')$$) AS weak_new;
SELECT test_util.try($$SELECT nile_auth.change_password(NULL, 'pete password 2')$$) AS null_old;
SELECT nile_auth.change_password('pete password 1', 'pete password 2') AS changed \gset
SELECT array(SELECT jsonb_object_keys(:'changed'::jsonb) ORDER BY 1) AS keys;
SELECT test_util.identity_under(:'pete') IS NULL AS token_before_change_rejected;
SELECT test_util.identity_under(:'changed'::jsonb->'token'->>'jwt') = :'pete_id' AS returned_token_works;
SELECT test_util.try($$SELECT nile_auth.login('pete@ops.test', 'pete password 1')$$) AS old_password;
SELECT nile_auth.login('pete@ops.test', 'pete password 2') ? 'token' AS new_password;
RESET nile.auth_token;
SELECT test_util.try($$SELECT nile_auth.change_password('pete password 2', 'pete password 3')$$) AS without_identity;

-- set_password: trusted backend only.
SELECT nile_auth.authenticate(:'olga') IS NOT NULL AS olga_in;
SELECT test_util.try(format('SELECT nile_auth.set_password(%L, %L)', :'pete_id', 'pete password 3')) AS owner_sets_password;
RESET nile.auth_token;
SELECT nile_auth.login('pete@ops.test', 'pete password 2')->'token'->>'jwt' AS pete \gset
SELECT nile_auth.set_password(:'pete_id', 'pete password 3') AS set;
SELECT test_util.identity_under(:'pete') IS NULL AS token_before_set_rejected;
SELECT nile_auth.login('pete@ops.test', 'pete password 3') ? 'token' AS logs_in;
SELECT test_util.try(format('SELECT nile_auth.set_password(%L, %L)', :'pete_id', 'short')) AS weak;

-- Password reset: tokens for the backend to mail; unknown email gives NULL, not an error.
SELECT nile_auth.authenticate(:'olga') IS NOT NULL AS olga_in;
SELECT test_util.try($$SELECT nile_auth.request_password_reset('pete@ops.test')$$) AS end_user_requests;
RESET nile.auth_token;
SELECT nile_auth.request_password_reset('nobody@ops.test') IS NULL AS unknown_email_is_null;
SELECT nile_auth.login('pete@ops.test', 'pete password 3')->'token'->>'jwt' AS pete \gset
SELECT nile_auth.request_password_reset('PETE@ops.test') AS reset1 \gset
SELECT nile_auth.request_password_reset('pete@ops.test') AS reset2 \gset
SELECT length(:'reset2') AS token_length, :'reset1' <> :'reset2' AS distinct_tokens;
SELECT test_util.try(format('SELECT nile_auth.reset_password(%L, %L)', :'reset1', 'pete password 4')) AS superseded;
SELECT test_util.try(format('SELECT nile_auth.reset_password(%L, %L)', :'reset2', 'short')) AS weak;
SELECT test_util.try($$SELECT nile_auth.reset_password('not a token', 'pete password 4')$$) AS garbage;
SELECT nile_auth.reset_password(:'reset2', 'pete password 4') AS reset;
SELECT test_util.try(format('SELECT nile_auth.reset_password(%L, %L)', :'reset2', 'pete password 5')) AS reused;
SELECT test_util.identity_under(:'pete') IS NULL AS token_before_reset_rejected;
SELECT nile_auth.login('pete@ops.test', 'pete password 4') ? 'token' AS logs_in;
-- A token resets only its own user's password.
SELECT nile_auth.request_password_reset('quinn@else.test') AS reset_quinn \gset
SELECT nile_auth.reset_password(:'reset_quinn', 'quinn password 2') AS reset;
SELECT nile_auth.login('pete@ops.test', 'pete password 4') ? 'token' AS pete_unchanged;
SELECT nile_auth.login('quinn@else.test', 'quinn password 2') ? 'token' AS quinn_changed;
-- An expired token fails (expiry moved into the past as superuser).
SELECT nile_auth.request_password_reset('pete@ops.test') AS reset3 \gset
\c - postgres
UPDATE nile_auth.one_time_tokens SET expires = now() - interval '1 second'
 WHERE token_hash = sha256(convert_to(:'reset3', 'UTF8'));
\c - nile_app
SELECT test_util.try(format('SELECT nile_auth.reset_password(%L, %L)', :'reset3', 'pete password 5')) AS expired;

-- Email verification: the token is the proof, no session needed; single use.
SELECT nile_auth.login('pete@ops.test', 'pete password 4')->'token'->>'jwt' AS pete \gset
SELECT nile_auth.authenticate(:'pete') IS NOT NULL AS pete_in;
SELECT nile_auth.me()->'emailVerified' AS before;
SELECT nile_auth.request_email_verification() AS verify \gset
RESET nile.auth_token;
SELECT test_util.try('SELECT nile_auth.request_email_verification()') AS without_identity;
SELECT nile_auth.verify_email(:'verify') AS verified;
SELECT test_util.try(format('SELECT nile_auth.verify_email(%L)', :'verify')) AS reused;
SELECT test_util.try(format('SELECT nile_auth.verify_email(%L)', :'reset3')) AS wrong_purpose;
SELECT nile_auth.authenticate(:'pete') IS NOT NULL AS pete_in;
SELECT nile_auth.me()->'emailVerified' <> 'null' AS after;
RESET nile.auth_token;

-- list_users(true): every user, for the trusted backend only.
SELECT count(*) >= 3 AS backend_lists_all FROM nile_auth.list_users(true);
SELECT nile_auth.authenticate(:'pete') IS NOT NULL AS pete_in;
SELECT test_util.try('SELECT nile_auth.list_users(true)') AS end_user_lists_all;
SELECT nile_auth.set_tenant(:'ops') IS NOT NULL AS in_ops;
SELECT array_agg(u->>'email' ORDER BY u->>'email') AS list_users_false FROM nile_auth.list_users(false) u;
RESET nile.auth_token;
RESET nile.tenant_id;

-- The remaining permission and bad-input cases, one line each.
SELECT nile_auth.authenticate(:'pete') IS NOT NULL AS pete_in;
SELECT test_util.try(format('SELECT nile_auth.activate_user(%L)', :'olga_id')) AS member_activates_owner;
SELECT test_util.try('SELECT nile_auth.list_users(NULL)') AS list_users_null;
RESET nile.auth_token;
SELECT test_util.try('SELECT nile_auth.activate_user(NULL)') AS activate_null;
SELECT test_util.try('SELECT nile_auth.lock_account(NULL)') AS lock_null;
SELECT test_util.try(format('SELECT nile_auth.unlock_account(%L)', gen_random_uuid())) AS unlock_unknown;
SELECT test_util.try(format('SELECT nile_auth.set_password(%L, %L)', gen_random_uuid(), 'long enough 1')) AS set_unknown;
SELECT test_util.try('SELECT nile_auth.request_password_reset(NULL)') AS reset_request_null;
SELECT test_util.try($$SELECT nile_auth.reset_password(NULL, 'long enough 1')$$) AS reset_null_token;
SELECT test_util.try('SELECT nile_auth.verify_email(NULL)') AS verify_null;
SELECT test_util.try('SELECT nile_auth.list_api_keys()') AS list_keys_without_identity;
SELECT test_util.try('SELECT nile_auth.revoke_api_key(NULL)') AS revoke_null;

-- No secret is readable by an application role or stored in clear.
SELECT test_util.try('SELECT * FROM nile_auth.one_time_tokens') AS read_one_time_tokens;
SELECT test_util.try('SELECT * FROM nile_auth.audit_log') AS read_audit_log;
SELECT test_util.try('DELETE FROM nile_auth.audit_log') AS delete_audit_log;
\c - postgres
SELECT count(*) AS hashed_only FROM nile_auth.one_time_tokens
 WHERE token_hash = sha256(convert_to(:'reset2', 'UTF8'));
SELECT count(*) AS secrets_in_audit_log FROM nile_auth.audit_log a
 WHERE a::text LIKE '%password %' OR a::text LIKE '%' || :'reset2' || '%' OR a::text LIKE '%' || :'verify' || '%'
    OR a::text LIKE '%$argon2%';
SELECT event, count(*) FROM nile_auth.audit_log WHERE target = :'pete_id' GROUP BY event ORDER BY event;
