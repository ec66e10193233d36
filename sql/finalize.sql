-- Runs last in CREATE EXTENSION, after every function exists.

-- Key administration: superusers, or members of nile_auth_admin. Roles are cluster-wide, so
-- the role is created only if another database's installation has not made it already, and
-- DROP EXTENSION leaves it in place.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nile_auth_admin') THEN
        CREATE ROLE nile_auth_admin NOLOGIN;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth.rotate_signing_key() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth.retire_signing_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nile_auth.rotate_signing_key() TO nile_auth_admin;
GRANT EXECUTE ON FUNCTION nile_auth.retire_signing_key(text) TO nile_auth_admin;

-- Cached token verifications in every backend are dropped when keys change or a user is
-- deleted (see src/identity.rs).
REVOKE EXECUTE ON FUNCTION nile_auth.invalidate_identity_cache() FROM PUBLIC;
CREATE TRIGGER invalidate_identity_cache
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON nile_auth.signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_identity_cache();
CREATE TRIGGER invalidate_identity_cache
    AFTER UPDATE OF deleted, deactivated, tokens_valid_after OR DELETE OR TRUNCATE ON nile_auth.users
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_identity_cache();

-- The first signing key.
SELECT nile_auth.rotate_signing_key();
