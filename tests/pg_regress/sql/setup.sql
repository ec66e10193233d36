-- Installs the extension and the roles the other tests use. The upgrade test runs this suite
-- again on a database updated from the previous release, where the extension (and data) exist.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS nile_auth;
RESET client_min_messages;
-- Only the tests use these: pgcrypto to forge tokens, dblink for a second backend.
CREATE EXTENSION pgcrypto;
CREATE EXTENSION dblink;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nile_app') THEN
        CREATE ROLE nile_app LOGIN;           -- a plain application role
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nile_keyadmin') THEN
        CREATE ROLE nile_keyadmin LOGIN;      -- key administration without superuser
    END IF;
END $$;
-- All an application role needs (docs/api.md, "Privileges").
GRANT USAGE ON SCHEMA nile_auth TO nile_app, nile_keyadmin;
SET client_min_messages = warning;  -- the grants may exist from an earlier run
GRANT nile_auth_admin TO nile_keyadmin;
-- nile_app is the application backend: trusted without a token (docs/api.md, "Threat model").
GRANT nile_auth_backend TO nile_app;
RESET client_min_messages;

-- Test helpers. try() reports 'ok' or 'SQLSTATE: message' (uuids masked, they differ per run);
-- the EXCEPTION block rolls back whatever the statement wrote. jwt() signs arbitrary headers and claims, to forge tokens.
CREATE SCHEMA test_util;
GRANT USAGE ON SCHEMA test_util TO PUBLIC;
CREATE FUNCTION test_util.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
END $$;
CREATE FUNCTION test_util.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT rtrim(translate(encode(b, 'base64'), E'+/\n', '-_'), '=') $$;
CREATE FUNCTION test_util.jwt(header jsonb, claims jsonb, secret bytea) RETURNS text LANGUAGE sql AS $$
    SELECT s || '.' || test_util.b64url(public.hmac(convert_to(s, 'utf8'), secret, 'sha256'))
      FROM (SELECT test_util.b64url(convert_to(header::text, 'utf8')) || '.' ||
                   test_util.b64url(convert_to(claims::text, 'utf8')) AS s) x $$;
-- Part n (1 header, 2 claims) of a token, decoded.
CREATE FUNCTION test_util.jwt_part(token text, n int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_from(decode(rpad(translate(p, '-_', '+/'), (length(p) + 3) / 4 * 4, '='), 'base64'), 'utf8')::jsonb
      FROM split_part(token, '.', n) p $$;
-- The identity user_id() derives from a token placed in the setting, as a client would.
CREATE FUNCTION test_util.identity_under(token text) RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('nile.auth_token', token, true); RETURN nile_auth.user_id(); END $$;

-- The extension's tables, and which are dumped by pg_dump.
SELECT c.relname, c.oid = ANY (e.extconfig) AS dumped
  FROM pg_class c, pg_extension e
 WHERE c.relnamespace = 'nile_auth'::regnamespace AND c.relkind = 'r' AND e.extname = 'nile_auth'
 ORDER BY 1;

-- Every function that reads private tables is SECURITY DEFINER with a pinned search_path. The
-- documented exceptions (docs/api.md, "Security model") are the functions policies call
-- (user_id, tenant_id, is_trusted_backend), set_tenant and enable/disable_tenant_isolation.
SELECT p.proname, p.prosecdef AS security_definer, p.proconfig, p.provolatile
  FROM pg_proc p
 WHERE p.pronamespace = 'nile_auth'::regnamespace
 ORDER BY 1, 2;

-- One key signs and one waits in standby (CREATE EXTENSION makes an ES256 pair of them: src/keys.rs
-- tests that; an updated 0.1.0 database keeps HS256 current); HS256 secrets are 256 bits.
SELECT count(*) FILTER (WHERE alg = 'HS256' AND octet_length(secret) <> 32) AS hs256_not_256_bit,
       count(*) FILTER (WHERE state = 'current') AS current_keys,
       count(*) FILTER (WHERE state = 'standby') AS standby_keys
  FROM nile_auth.signing_keys;
