-- Who is trusted (issue 10, classes 1-3). Trust comes only from catalog facts: a token that
-- verifies, or membership in nile_auth_backend (or superuser). Each attack here succeeded
-- against 0.1.0; each is refused now.
\c - postgres
SELECT t.id AS side FROM nile_auth.tenants t WHERE t.name = 'side project'
   AND EXISTS (SELECT FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id
                WHERE tu.tenant_id = t.id AND u.email = 'mary@clustify.dev') \gset
-- An HS256 key that still verifies (tokens.sql retired it), so SQL's HMAC can sign with it.
SELECT kid AS kid, secret AS secret FROM nile_auth.signing_keys WHERE alg = 'HS256' AND state = 'retired' ORDER BY created DESC LIMIT 1 \gset
SELECT id AS mary_id FROM nile_auth.users WHERE email = 'mary@clustify.dev' \gset
SELECT id AS shaun_id FROM nile_auth.users WHERE email = 'shaun@clustify.dev' \gset
SELECT id AS managed FROM nile_auth.tenants WHERE name = 'Managed Expenses' \gset
SELECT extract(epoch FROM now())::bigint AS now \gset
-- A token for Mary, signed with the real key, expired an hour ago.
SELECT test_util.jwt(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'kid'),
                     jsonb_build_object('sub', :'mary_id', 'email', 'mary@clustify.dev', 'iat', :now - 7200, 'nbf', :now - 7200,
                                        'exp', :now - 3600, 'jti', gen_random_uuid(), 'iss', 'nile_auth', 'aud', current_database()),
                     :'secret') AS expired \gset
-- nile_app is a trusted backend (a member of nile_auth_backend), forwarding users' tokens.
GRANT USAGE ON SCHEMA clustify TO nile_app;
GRANT SELECT ON clustify.clusters TO nile_app;
\c - nile_app
SELECT nile_auth.is_trusted_backend() AS backend_without_token;
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt' AS shaun \gset
SELECT split_part(:'shaun', '.', 1) || '.' ||
       test_util.b64url(convert_to((test_util.jwt_part(:'shaun', 2) || jsonb_build_object('sub', :'mary_id'))::text, 'utf8')) ||
       '.' || split_part(:'shaun', '.', 3) AS tampered \gset

-- Class 1: a present token that does not verify is never trust, even for a backend role. Any
-- use of a tenant and every function acting for the caller fail with 28000; user_id() is NULL.
CREATE TEMP TABLE bad_tokens (kind text, token text);
INSERT INTO bad_tokens VALUES ('garbage', 'garbage'), ('tampered', :'tampered'), ('expired', :'expired'),
                              ('empty header', '.x.y'), ('spaces', '  '), ('zero-width space', U&'\200B'),
                              ('empty, set on purpose', '');
SELECT b.kind,
       test_util.try(format('SET LOCAL nile.auth_token = %L; SET LOCAL nile.tenant_id = %L; SELECT count(*) FROM clustify.clusters', b.token, :'side')) AS read_foreign_rows,
       test_util.try(format('SET LOCAL nile.auth_token = %L; SELECT nile_auth.set_tenant(%L)', b.token, :'side')) AS set_tenant,
       test_util.try(format('SET LOCAL nile.auth_token = %L; SELECT nile_auth.create_tenant(%L)', b.token, 'squat')) AS create_tenant,
       test_util.try(format('SET LOCAL nile.auth_token = %L; SELECT nile_auth.list_tenants()', b.token)) AS list_tenants,
       test_util.try(format('SET LOCAL nile.auth_token = %L; SELECT nile_auth.lock_account(%L)', b.token, :'mary_id')) AS backend_only
  FROM bad_tokens b ORDER BY b.kind;
-- Once those settings ended (SET LOCAL) or were RESET, there is no token again.
SELECT nile_auth.is_trusted_backend() AS backend_after_local_ended;
SET nile.auth_token = '';
SELECT test_util.try('SELECT nile_auth.create_tenant(''squat'')') AS session_empty_token;
RESET nile.auth_token;
SELECT nile_auth.is_trusted_backend() AS backend_after_reset;
-- The same, one by one, for the functions that act for the caller or need the backend.
SET nile.auth_token = 'garbage';
SELECT nile_auth.user_id() IS NULL AS no_identity, nile_auth.is_trusted_backend() AS trusted;
SELECT regexp_replace(f, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS call, test_util.try('SELECT ' || f) AS result FROM unnest(ARRAY[
    'nile_auth.me()', $$nile_auth.update_me('{"name": "x"}')$$, 'nile_auth.list_users(true)',
    'nile_auth.audit_events()', $$nile_auth.create_api_key('k')$$, 'nile_auth.list_api_keys()',
    $$nile_auth.request_password_reset('mary@clustify.dev')$$, format('nile_auth.deactivate_user(%L)', :'mary_id'),
    format('nile_auth.set_password(%L, %L)', :'mary_id', 'a new password 1'), $$nile_auth.change_password('a', 'b')$$,
    format('nile_auth.add_member(%L, %L)', :'side', 'shaun@clustify.dev'), format('nile_auth.rename_tenant(%L, %L)', :'side', 'x'),
    format('nile_auth.unlink_user(%L, %L)', :'mary_id', :'side'), $$nile_auth.request_email_verification()$$]) f;
-- The built-in tables show nothing, and a tenant in the setting is refused.
SELECT count(*) AS users_seen FROM nile_auth.users;
SELECT count(*) AS tenants_seen FROM nile_auth.tenants;
SET nile.tenant_id = :'side';
SELECT test_util.try('SELECT count(*) FROM nile_auth.tenant_users') AS memberships_with_tenant;
RESET nile.tenant_id;
RESET nile.auth_token;
-- Signup and login act for nobody: they need no token, and a bad one does not stop them.
SET nile.auth_token = 'garbage';
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1') ? 'token' AS login_with_bad_token_in_setting;
RESET nile.auth_token;

-- Class 2: an end-user role (clustify_web is not in nile_auth_backend) is never a backend,
-- whatever it sets; nile_auth.require_token is retired and cannot be set.
\c - clustify_web
SELECT nile_auth.is_trusted_backend() AS trusted, nile_auth.user_id() IS NULL AS no_identity;
SELECT test_util.try('SELECT nile_auth.create_tenant(''squat'')') AS create_tenant_without_token;
SET nile.tenant_id = :'side';
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS read_without_token;
SELECT test_util.try('SELECT nile_auth.tenant_id()') AS tenant_id_without_token;
RESET nile.tenant_id;
SELECT test_util.try('SET nile_auth.require_token = off') AS set_retired_setting;
SELECT test_util.try(format('SELECT set_config(%L, %L, false)', 'nile_auth.require_token', 'off')) AS set_config_retired_setting;
SELECT test_util.try('SET ROLE nile_auth_backend') AS set_role_backend;
SELECT test_util.try('SET ROLE nile_app') AS set_role_app;
-- An application's SECURITY DEFINER function owned by a backend role does not make its caller
-- a backend: trust follows the session's role, not the function owner's.
\c - postgres
CREATE FUNCTION clustify.backend_view_of_tenants() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS 'SELECT count(*) FROM nile_auth.list_tenants()';
ALTER FUNCTION clustify.backend_view_of_tenants() OWNER TO nile_app;
GRANT EXECUTE ON FUNCTION clustify.backend_view_of_tenants() TO clustify_web;
\c - nile_app
SELECT clustify.backend_view_of_tenants() > 0 AS backend_lists_tenants;
\c - clustify_web
SELECT test_util.try('SELECT clustify.backend_view_of_tenants()') AS end_user_through_definer;
-- Granting nile_auth_backend is the one way in; revoking it takes trust away at once.
\c - postgres
GRANT nile_auth_backend TO clustify_web;
\c - clustify_web
SELECT nile_auth.is_trusted_backend() AS trusted_after_grant;
\c - postgres
REVOKE nile_auth_backend FROM clustify_web;
\c - clustify_web
SELECT nile_auth.is_trusted_backend() AS trusted_after_revoke;

-- Class 3: checks resolve nothing through the caller's search_path. Functions named like the
-- ones an ownership check could call, in the attacker's schema first on the path, change nothing.
\c - postgres
CREATE SCHEMA evil AUTHORIZATION clustify_web;
\c - clustify_web
CREATE FUNCTION evil.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.pg_class_ownercheck(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.format_type(oid, integer) RETURNS text LANGUAGE sql AS 'SELECT ''uuid''::text';
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
-- An index expression runs as its table owner inside maintenance that others start (a
-- superuser's ANALYZE or REINDEX, autovacuum). There nobody is a backend, and no token counts.
CREATE TABLE evil.t (i int);
CREATE FUNCTION evil.probe(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE NOTICE 'trusted: %, user: %', nile_auth.is_trusted_backend(), nile_auth.user_id() IS NOT NULL;
    RETURN i;
END $$;
CREATE INDEX ON evil.t (evil.probe(i));
INSERT INTO evil.t VALUES (1);
\c - postgres
SELECT set_config('nile.auth_token', :'shaun', false) IS NOT NULL AS superuser_with_a_token;
ANALYZE evil.t;
RESET nile.auth_token;
REINDEX TABLE evil.t;
\c - clustify_web
SET search_path = evil, pg_catalog, public;
SELECT test_util.try('SELECT nile_auth.disable_tenant_isolation(''clustify.clusters'')') AS disable_others_table;
SELECT test_util.try('SELECT nile_auth.disable_tenant_isolation(''nile_auth.users'')') AS disable_on_users;
SELECT test_util.try('SELECT nile_auth.enable_tenant_isolation(''nile_auth.credentials'')') AS enable_on_credentials;
RESET search_path;
\c - postgres
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE oid IN ('clustify.clusters'::regclass, 'nile_auth.users'::regclass) ORDER BY relname;
SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;

-- Class 7: set_context(token, tenant) is the parameterised way to set the request context: both
-- settings for the current transaction only, checked at once.
\c - clustify_web
BEGIN;
SELECT nile_auth.set_context(:'shaun', :'managed') = nile_auth.user_id() AS returns_the_user;
SELECT nile_auth.tenant_id() = :'managed' AS tenant_set, count(*) > 0 AS sees_rows FROM clustify.clusters;
COMMIT;
SELECT nile_auth.user_id() IS NULL AS no_identity_after_commit, nile_auth.tenant_id() IS NULL AS no_tenant_after_commit;
BEGIN;
SET LOCAL nile.tenant_id = :'managed';
SELECT nile_auth.set_context(:'shaun') IS NOT NULL AS token_only, nile_auth.tenant_id() IS NULL AS clears_tenant;
COMMIT;
SELECT test_util.try(format('SELECT nile_auth.set_context(%L, %L)', :'shaun', :'side')) AS foreign_tenant,
       test_util.try(format('SELECT nile_auth.set_context(%L, %L)', :'tampered', :'managed')) AS tampered_token,
       test_util.try($$SELECT nile_auth.set_context('')$$) AS empty_token,
       test_util.try($$SELECT nile_auth.set_context(NULL)$$) AS null_token;
-- A failed set_context leaves nothing set.
SELECT nile_auth.user_id() IS NULL AS nothing_left, current_setting('nile.auth_token', true) AS token_setting;

-- Class 5: a token from a tenant-bound API key does nothing outside its tenant and mints
-- nothing broader. Mary owns "side project" and is a member of "Managed Expenses".
\c - clustify_web
SELECT nile_auth.authenticate(nile_auth.login('mary@clustify.dev', 'mary password 1')->'token'->>'jwt') IS NOT NULL AS mary_in;
SELECT nile_auth.create_api_key('side bot', :'side')->>'key' AS side_key \gset
SELECT nile_auth.create_api_key('laptop')->>'id' AS unscoped_key_id \gset
RESET nile.auth_token;
SELECT nile_auth.authenticate(nile_auth.login_with_api_key(:'side_key')->'token'->>'jwt') IS NOT NULL AS scoped_in;
-- Keys it creates are bound to its tenant; another tenant is refused.
SELECT nile_auth.create_api_key('escape')->>'tenantId' = :'side' AS new_key_bound_to_scope;
SELECT test_util.try(format('SELECT nile_auth.create_api_key(%L, %L)', 'escape', :'managed')) AS key_for_other_tenant;
SELECT count(*) AS keys_listed, bool_and(k->>'tenantId' = :'side') AS only_scope_keys FROM nile_auth.list_api_keys() k;
SELECT test_util.try(format('SELECT nile_auth.revoke_api_key(%L)', :'unscoped_key_id')) AS revoke_unscoped_key;
-- It sees only its tenant, in every listing and table.
SELECT array_agg(t->>'name') AS list_tenants FROM nile_auth.list_tenants() t;
SELECT nile_auth.me()->'tenants' = jsonb_build_array(:'side') AS me_tenants_scope_only;
SELECT array_agg(name ORDER BY name) AS tenants_table FROM nile_auth.tenants;
SELECT count(*) AS memberships_elsewhere FROM nile_auth.tenant_users WHERE tenant_id <> :'side';
SELECT array_agg(email ORDER BY email) AS users_table FROM nile_auth.users;
SELECT bool_and(e->>'tenantId' = :'side') AS audit_scope_only FROM nile_auth.audit_events() e;
-- Account-wide actions are outside its tenant.
SELECT regexp_replace(f, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS call, test_util.try('SELECT ' || f) AS result FROM unnest(ARRAY[
    $$nile_auth.create_tenant('escape')$$, $$nile_auth.update_me('{"name": "Scoped"}')$$,
    $$nile_auth.change_password('mary password 1', 'a new password 1')$$, $$nile_auth.request_email_verification()$$,
    format('nile_auth.set_tenant(%L)', :'managed')]) f;
-- Shaun shares only "Managed Expenses" with Mary: outside this token's tenant, so not found.
SELECT test_util.try(format('SELECT nile_auth.update_user(%L, %L)', :'shaun_id', '{"name": "x"}')) AS update_user_outside;
SELECT test_util.try(format('SELECT nile_auth.deactivate_user(%L)', :'shaun_id')) AS deactivate_outside;
RESET nile.auth_token;
