-- Runs last in CREATE EXTENSION, after every function exists.

-- Two roles, cluster-wide, so each is created only if another database's installation has not
-- made it already, and DROP EXTENSION leaves them in place:
--   nile_auth_backend: its members (and superusers) are trusted application backends
--                      (src/caller.rs); every other role is an end-user role;
--   nile_auth_admin:   key administration.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nile_auth_backend') THEN
        CREATE ROLE nile_auth_backend NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nile_auth_admin') THEN
        CREATE ROLE nile_auth_admin NOLOGIN;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth.rotate_signing_key(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth.revoke_signing_key(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth.list_signing_keys() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth._add_signing_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nile_auth.rotate_signing_key(text) TO nile_auth_admin;
GRANT EXECUTE ON FUNCTION nile_auth.revoke_signing_key(text) TO nile_auth_admin;
GRANT EXECUTE ON FUNCTION nile_auth.list_signing_keys() TO nile_auth_admin;

-- A CPU-cost oracle for the benchmarks (bench/run.py); not for applications.
REVOKE EXECUTE ON FUNCTION nile_auth._argon2_verify(text, text) FROM PUBLIC;

-- Backends cache verified tokens and live memberships across transactions
-- (src/identity/verify.rs, src/tenancy/context.rs). These triggers make every backend drop them when keys change, a user is
-- deleted, deactivated or revokes tokens, or a membership ends (src/invalidation.rs).
REVOKE EXECUTE ON FUNCTION nile_auth.invalidate_backend_caches() FROM PUBLIC;
CREATE TRIGGER invalidate_backend_caches
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON nile_auth.signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_backend_caches();
CREATE TRIGGER invalidate_backend_caches
    AFTER UPDATE OF deleted, deactivated, tokens_valid_after OR DELETE OR TRUNCATE ON nile_auth.users
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_backend_caches();
-- A session that ends or goes (logout, revocation, deletion); a refresh, which writes only
-- refresh_tokens, sends nothing.
CREATE TRIGGER invalidate_backend_caches
    AFTER UPDATE OF ended OR DELETE OR TRUNCATE ON nile_auth.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_backend_caches();
-- Only live memberships and their roles are cached (tenant_id(), has_role()): an ended or moved
-- membership, or changed roles, matter; adding members sends nothing.
CREATE TRIGGER invalidate_backend_caches_on_change
    AFTER UPDATE ON nile_auth.tenant_users
    FOR EACH ROW WHEN (OLD.deleted IS NULL AND (NEW.deleted IS NOT NULL OR NEW.tenant_id <> OLD.tenant_id
                                                OR NEW.user_id <> OLD.user_id OR NEW.roles <> OLD.roles))
    EXECUTE FUNCTION nile_auth.invalidate_backend_caches();
CREATE TRIGGER invalidate_backend_caches
    AFTER DELETE OR TRUNCATE ON nile_auth.tenant_users
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_backend_caches();

-- A new current (or standby) key replaces the one there is: the old current key retires, the
-- old standby is revoked. Rotation never meets this (it moves keys on first); a restore does:
-- CREATE EXTENSION makes keys, then the dump's keys arrive and take their places back.
CREATE FUNCTION nile_auth._replace_signing_key() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The relation the row goes into: on Citus, this node's copy of the table (nile_auth.distribute()),
    -- which no trigger may write through the table itself. Times come from the new row, not this
    -- node's clock, so that every copy agrees.
    EXECUTE format('UPDATE %I.%I SET state = CASE state WHEN ''current'' THEN ''retired'' ELSE ''revoked'' END,
                                     retired = COALESCE(retired, GREATEST(created, $1)),
                                     revoked = CASE state WHEN ''standby'' THEN $1 ELSE revoked END
                     WHERE state = $2 AND kid <> $3', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING NEW.created, NEW.state, NEW.kid;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth._replace_signing_key() FROM PUBLIC;
CREATE TRIGGER replace_signing_key
    BEFORE INSERT ON nile_auth.signing_keys
    FOR EACH ROW WHEN (NEW.state IN ('current', 'standby'))
    EXECUTE FUNCTION nile_auth._replace_signing_key();

-- The first signing key, and a standby published ahead of the first rotation.
SELECT nile_auth._add_signing_key('ES256', 'current');
SELECT nile_auth._add_signing_key('ES256', 'standby');
