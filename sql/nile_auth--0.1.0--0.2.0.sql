-- nile_auth 0.1.0 -> 0.2.0, run by ALTER EXTENSION nile_auth UPDATE.
--
-- Every change to a SQL object between the two versions is made here, in the same commit as
-- the change to the fresh-install SQL (sql/*.sql and the #[pg_extern] functions). The upgrade
-- test (tests/upgrade) updates a 0.1.0 database with data and fails unless the result equals
-- a fresh CREATE EXTENSION of 0.2.0. Once 0.2.0 is released (tagged), this file is frozen.
\echo Use "ALTER EXTENSION nile_auth UPDATE TO '0.2.0'" to load this file. \quit

-- Trusted backends (issue 10). In 0.1.0 a session without a token was the trusted backend
-- unless its role had nile_auth.require_token = on. From 0.2.0 a role is a trusted backend
-- only if it is a superuser or a member of nile_auth_backend; every other role needs a
-- verified token. nile_auth.require_token is retired.
DO $$
DECLARE
    r record;
    messages text := pg_catalog.current_setting('client_min_messages');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'nile_auth_backend') THEN
        CREATE ROLE nile_auth_backend NOLOGIN;
    END IF;
    -- Roles that could use nile_auth here without require_token were trusted backends: say so,
    -- so the DBA grants nile_auth_backend to those that are.
    FOR r IN
        SELECT a.rolname FROM pg_catalog.pg_roles a
         WHERE NOT a.rolsuper AND a.rolname !~ '^pg_'
           AND pg_catalog.has_schema_privilege(a.oid, 'nile_auth', 'USAGE')
           AND NOT pg_catalog.pg_has_role(a.oid, 'nile_auth_backend', 'USAGE')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s, pg_catalog.pg_database d
                            WHERE d.datname = pg_catalog.current_database()
                              AND s.setrole = a.oid AND s.setdatabase IN (0, d.oid)
                              AND 'nile_auth.require_token=on' = ANY (s.setconfig))
         ORDER BY a.rolname
    LOOP
        RAISE WARNING 'role % was a trusted backend under nile_auth 0.1.0 and is now an end-user role', r.rolname
            USING HINT = pg_catalog.format('If it is an application backend: GRANT nile_auth_backend TO %I;', r.rolname);
    END LOOP;
    -- The retired setting would be reported as invalid at every connection of these roles.
    -- The library is loaded first, so that RESET does not leave a placeholder for the name in
    -- this session (reported when the library loads later).
    PERFORM nile_auth.uuid_generate_v7();
    PERFORM pg_catalog.set_config('client_min_messages', 'error', true);
    FOR r IN
        SELECT a.rolname, s.setdatabase <> 0 AS this_database
          FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles a ON a.oid = s.setrole
          JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database()
         WHERE s.setdatabase IN (0, d.oid)
           AND EXISTS (SELECT FROM unnest(s.setconfig) c WHERE c LIKE 'nile\_auth.require\_token=%')
    LOOP
        IF r.this_database THEN
            EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET nile_auth.require_token', r.rolname, pg_catalog.current_database());
        ELSE
            EXECUTE pg_catalog.format('ALTER ROLE %I RESET nile_auth.require_token', r.rolname);
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('client_min_messages', messages, true);
END
$$;

-- set_context(token, tenant_id): the per-request call with bind parameters (issue 10, class 7).
CREATE FUNCTION nile_auth.set_context(token text, tenant_id uuid DEFAULT NULL) RETURNS uuid
VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'set_context_wrapper';

-- Tokens limited to one tenant (tenant API keys) do nothing outside it (issue 10, class 5): the
-- built-in tables show such a token only its tenant, its members and its own membership there.
CREATE FUNCTION nile_auth._token_tenant() RETURNS uuid
STABLE PARALLEL RESTRICTED STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'token_tenant_sql_wrapper';
CREATE OR REPLACE FUNCTION nile_auth._my_tenant_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(tu.tenant_id), '{}')
      FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
     WHERE tu.user_id = nile_auth.user_id() AND tu.deleted IS NULL AND t.deleted IS NULL
       AND tu.tenant_id = COALESCE(nile_auth._token_tenant(), tu.tenant_id)
$$;
CREATE OR REPLACE FUNCTION nile_auth._visible_user_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(DISTINCT other.user_id), '{}')
      FROM nile_auth.tenant_users mine
      JOIN nile_auth.tenant_users other ON other.tenant_id = mine.tenant_id
      JOIN nile_auth.tenants t ON t.id = mine.tenant_id
     WHERE mine.user_id = nile_auth.user_id()
       AND mine.deleted IS NULL AND other.deleted IS NULL AND t.deleted IS NULL
       AND mine.tenant_id = COALESCE(nile_auth._token_tenant(), mine.tenant_id)
$$;
ALTER POLICY visible_memberships ON nile_auth.tenant_users
    USING (nile_auth.is_trusted_backend()
           OR (user_id = nile_auth.user_id() AND tenant_id = COALESCE(nile_auth._token_tenant(), tenant_id))
           OR tenant_id = nile_auth.tenant_id());

-- Lockout counted in shared memory, written down per account key (issue 10, classes 4 and 9).
-- Failure counts and automatic locks move from credentials to login_failures; credentials keeps
-- the manual lock ('infinity') only.
CREATE TABLE nile_auth.login_failures (
    account      uuid PRIMARY KEY,
    failures     integer NOT NULL,
    last_failure timestamptz NOT NULL,
    locked_until timestamptz
);
CREATE INDEX login_failures_last_failure_idx ON nile_auth.login_failures (last_failure);
REVOKE ALL ON nile_auth.login_failures FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('nile_auth.login_failures', '');
INSERT INTO nile_auth.login_failures (account, failures, last_failure, locked_until)
SELECT user_id, failed_logins, COALESCE(last_failed_login, now()),
       CASE WHEN locked_until <> 'infinity' THEN locked_until END
  FROM nile_auth.credentials
 WHERE failed_logins > 0 OR (locked_until IS NOT NULL AND locked_until <> 'infinity');
UPDATE nile_auth.credentials SET locked_until = NULL WHERE locked_until <> 'infinity';
ALTER TABLE nile_auth.credentials DROP COLUMN failed_logins, DROP COLUMN last_failed_login;
