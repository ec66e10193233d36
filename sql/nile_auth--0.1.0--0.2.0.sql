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
STABLE PARALLEL SAFE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'token_tenant_sql_wrapper';
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

-- Holes around isolated tables (issue 10, class 8): partitions now and later, TRUNCATE, other
-- permissive policies (sql/isolation_guards.sql).
CREATE FUNCTION nile_auth._guard_isolated_tree(rel oid, created boolean) RETURNS void
STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'guard_isolated_tree_wrapper';
CREATE FUNCTION nile_auth._check_new_policy(policy oid) RETURNS void
STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'check_new_policy_wrapper';
CREATE FUNCTION nile_auth._refuse_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT nile_auth.is_trusted_backend() THEN
        RAISE EXCEPTION 'TRUNCATE of tenant-isolated table %.% is for trusted backends only', TG_TABLE_SCHEMA, TG_TABLE_NAME
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION nile_auth._guard_isolated_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    command record;
BEGIN
    FOR command IN SELECT classid, objid, command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF command.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
            PERFORM nile_auth._guard_isolated_tree(command.objid, command.command_tag = 'CREATE TABLE');
        ELSIF command.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
            PERFORM nile_auth._check_new_policy(command.objid);
        END IF;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION nile_auth._guard_isolated_tree(oid, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth._check_new_policy(oid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth._guard_isolated_tables() FROM PUBLIC;
CREATE EVENT TRIGGER nile_auth_guard_isolated_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE SCHEMA', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION nile_auth._guard_isolated_tables();
-- 0.2.0's tenant_isolation policy (issue 14): its WITH CHECK is
-- (tenant_id = nile_auth._require_tenant_id()), so a write with no tenant set fails with 55000
-- "no tenant is set" rather than as a policy violation. Every policy 0.1.0 made gets it here,
-- partitions isolated on their own included, before the guards below look at the policies.
-- pg_get_expr leaves out schemas on the search_path, which in this script holds nile_auth: the
-- comparison runs with pg_catalog alone on it, as the library's own check (policy_state) does.
DO $$
DECLARE
    isolated pg_catalog.regclass;
    saved_path text := pg_catalog.current_setting('search_path');
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
    FOR isolated IN
        SELECT p.polrelid::pg_catalog.regclass
          FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
         WHERE p.polname = 'tenant_isolation' AND c.relnamespace <> 'nile_auth'::pg_catalog.regnamespace
           AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = '(tenant_id = nile_auth.tenant_id())'
           AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = '(tenant_id = nile_auth.tenant_id())'
    LOOP
        EXECUTE pg_catalog.format('ALTER POLICY tenant_isolation ON %s WITH CHECK (tenant_id = nile_auth._require_tenant_id())', isolated);
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', saved_path, true);
END $$;

-- Tables isolated under 0.1.0 get the same guards now, their partitions and inheriting tables
-- included. Other permissive policies already there are left alone (the update does not drop a
-- DBA's policy) and named in a WARNING; so is a partition 0.1.0 isolated on its own, which its
-- parent still shows across tenants.
DO $$
DECLARE
    isolated pg_catalog.regclass;
BEGIN
    FOR isolated IN
        SELECT DISTINCT p.polrelid::pg_catalog.regclass
          FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
         WHERE p.polname = 'tenant_isolation' AND c.relnamespace <> 'nile_auth'::pg_catalog.regnamespace
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
    LOOP
        PERFORM nile_auth._guard_isolated_tree(isolated, true);
    END LOOP;
    FOR isolated IN
        SELECT DISTINCT o.polrelid::pg_catalog.regclass
          FROM pg_catalog.pg_policy o JOIN pg_catalog.pg_policy t ON t.polrelid = o.polrelid AND t.polname = 'tenant_isolation'
         WHERE o.polpermissive AND o.polname <> 'tenant_isolation'
    LOOP
        RAISE WARNING 'nile_auth: % has other permissive policies, which widen its tenant isolation', isolated
              USING HINT = 'Drop them or recreate them AS RESTRICTIVE.';
    END LOOP;
    FOR isolated IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
          JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
         WHERE p.polname = 'tenant_isolation'
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy pp WHERE pp.polrelid = i.inhparent AND pp.polname = 'tenant_isolation')
    LOOP
        RAISE WARNING 'nile_auth: % is isolated but the table above it is not: that table shows its rows across tenants', isolated
              USING HINT = 'Run enable_tenant_isolation on the table at the top of the tree.';
    END LOOP;
END $$;

-- Emails are stored and compared in Unicode NFC (issue 10, class 9). Addresses 0.1.0 stored in
-- another form are normalized, unless two live accounts would then share one (a WARNING names
-- the account left as it was).
DO $$
DECLARE
    u record;
BEGIN
    IF pg_catalog.getdatabaseencoding() <> 'UTF8' THEN
        RETURN;
    END IF;
    FOR u IN SELECT id, email FROM nile_auth.users WHERE NOT (email IS NFC NORMALIZED) LOOP
        IF EXISTS (SELECT FROM nile_auth.users o
                    WHERE o.id <> u.id AND o.deleted IS NULL
                      AND lower(o.email) = lower(pg_catalog.normalize(u.email, NFC))) THEN
            RAISE WARNING 'nile_auth: the email of user % is, normalized, another live account''s; left as it was', u.id;
        ELSE
            UPDATE nile_auth.users SET email = pg_catalog.normalize(u.email, NFC) WHERE id = u.id;
        END IF;
    END LOOP;
END $$;

-- How each membership began (issue 10, class 6): only a tenant the user created, or that
-- created the user, administers the user's account. 0.1.0's memberships are classified from
-- the audit log; the rest count as added by someone else, which grants no such power.
-- (accepted_invitation: issue 11.)
ALTER TABLE nile_auth.tenant_users
    ADD COLUMN origin text NOT NULL DEFAULT 'added'
        CONSTRAINT tenant_users_origin_check
        CHECK (origin IN ('created_tenant', 'created_by_tenant', 'accepted_invitation', 'added'));
UPDATE nile_auth.tenant_users tu SET origin = 'created_tenant'
 WHERE EXISTS (SELECT FROM nile_auth.audit_log a
                WHERE a.event = 'tenant.created' AND a.tenant_id = tu.tenant_id AND a.actor = tu.user_id);
UPDATE nile_auth.tenant_users tu SET origin = 'created_by_tenant'
 WHERE EXISTS (SELECT FROM nile_auth.audit_log a
                WHERE a.event = 'user.created' AND a.tenant_id = tu.tenant_id AND a.target = tu.user_id::text);

-- The rest of the seeds' model (issue 11): account deletion, email change, invitations, teams,
-- roles in policies.

-- An email change waits for a token mailed to the new address.
ALTER TABLE nile_auth.one_time_tokens DROP CONSTRAINT one_time_tokens_purpose_check,
    ADD CONSTRAINT one_time_tokens_purpose_check
        CHECK (purpose IN ('password_reset', 'email_verification', 'email_change'));

-- has_role() caches roles with memberships, so a change of roles must reach every backend too.
DROP TRIGGER invalidate_backend_caches_on_end ON nile_auth.tenant_users;
CREATE TRIGGER invalidate_backend_caches_on_change
    AFTER UPDATE ON nile_auth.tenant_users
    FOR EACH ROW WHEN (OLD.deleted IS NULL AND (NEW.deleted IS NOT NULL OR NEW.tenant_id <> OLD.tenant_id
                                                OR NEW.user_id <> OLD.user_id OR NEW.roles <> OLD.roles))
    EXECUTE FUNCTION nile_auth.invalidate_backend_caches();

CREATE TABLE nile_auth.invitations (
    id          uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    tenant_id   uuid NOT NULL REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    email       text NOT NULL,
    roles       text[] NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    invited_by  uuid,
    created     timestamptz NOT NULL DEFAULT now(),
    expires     timestamptz NOT NULL,
    accepted    timestamptz,
    accepted_by uuid,
    revoked     timestamptz
);
CREATE UNIQUE INDEX invitations_pending_key ON nile_auth.invitations (tenant_id, lower(email))
    WHERE accepted IS NULL AND revoked IS NULL;
CREATE INDEX invitations_email_idx ON nile_auth.invitations (lower(email)) WHERE accepted IS NULL AND revoked IS NULL;
CREATE TABLE nile_auth.teams (
    id        uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    tenant_id uuid NOT NULL REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    name      text NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX teams_tenant_id_idx ON nile_auth.teams (tenant_id);
CREATE TABLE nile_auth.team_members (
    team_id   uuid NOT NULL REFERENCES nile_auth.teams (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES nile_auth.tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX team_members_user_idx ON nile_auth.team_members (tenant_id, user_id);
REVOKE ALL ON nile_auth.invitations, nile_auth.teams, nile_auth.team_members FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('nile_auth.invitations', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.teams', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.team_members', '');

-- sql/teams.sql, as a fresh install runs it.
-- Teams (src/teams.rs writes them): tenant data, so an application role reads a team and its
-- members only in its current tenant, as with any tenant-isolated table; the trusted backend
-- reads all.
GRANT SELECT ON nile_auth.teams, nile_auth.team_members TO PUBLIC;
ALTER TABLE nile_auth.teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE nile_auth.team_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_teams ON nile_auth.teams FOR SELECT
    USING (nile_auth.is_trusted_backend() OR tenant_id = nile_auth.tenant_id());
CREATE POLICY tenant_team_members ON nile_auth.team_members FOR SELECT
    USING (nile_auth.is_trusted_backend() OR tenant_id = nile_auth.tenant_id());

-- The current user's teams in the current tenant, for application policies:
--   USING (team_id = ANY ((SELECT nile_auth.team_ids())::uuid[]))
-- (the scalar subquery makes it run once per query). Empty with no user or no tenant.
CREATE FUNCTION nile_auth.team_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(m.team_id ORDER BY m.team_id), '{}')
      FROM nile_auth.team_members m
     WHERE m.tenant_id = nile_auth.tenant_id() AND m.user_id = nile_auth.user_id()
$$;


-- signup gains `invitation`. The new definition calls a symbol of its own (0.1.0's signup_wrapper
-- is gone from the library, so the old definition fails cleanly until this update).
DROP FUNCTION nile_auth.signup(text, text, text, text);
CREATE FUNCTION nile_auth.accept_invitation(
    "token" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'accept_invitation_wrapper';

CREATE FUNCTION nile_auth.add_team_member(
    "team_id" uuid,
    "user_id" uuid
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'add_team_member_wrapper';

CREATE FUNCTION nile_auth.change_email(
    "new_email" TEXT,
    "password" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'change_email_wrapper';

CREATE FUNCTION nile_auth.create_team(
    "name" TEXT,
    "tenant_id" uuid DEFAULT NULL
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'create_team_wrapper';

CREATE FUNCTION nile_auth.delete_team(
    "team_id" uuid
) RETURNS bool
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'delete_team_wrapper';

CREATE FUNCTION nile_auth.delete_user(
    "user_id" uuid DEFAULT NULL
) RETURNS bool
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'delete_user_wrapper';

CREATE FUNCTION nile_auth.has_role(
    "role" TEXT,
    "tenant_id" uuid DEFAULT NULL
) RETURNS bool
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'has_role_wrapper';

CREATE FUNCTION nile_auth.invite(
    "email" TEXT,
    "roles" TEXT[] DEFAULT '{member}',
    "tenant_id" uuid DEFAULT NULL,
    "expires_in" interval DEFAULT '7 days'
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'invite_wrapper';

CREATE FUNCTION nile_auth.list_invitations(
    "tenant_id" uuid DEFAULT NULL
) RETURNS SETOF jsonb
STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'list_invitations_wrapper';

CREATE FUNCTION nile_auth.list_teams() RETURNS SETOF jsonb
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'list_teams_wrapper';

CREATE FUNCTION nile_auth.remove_team_member(
    "team_id" uuid,
    "user_id" uuid
) RETURNS bool
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'remove_team_member_wrapper';

CREATE FUNCTION nile_auth.revoke_invitation(
    "id" uuid
) RETURNS bool
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_invitation_wrapper';

CREATE FUNCTION nile_auth.set_email(
    "user_id" uuid,
    "email" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'set_email_wrapper';

CREATE FUNCTION nile_auth.signup(
    "email" TEXT,
    "password" TEXT,
    "preferred_name" TEXT DEFAULT NULL,
    "new_tenant" TEXT DEFAULT NULL,
    "invitation" TEXT DEFAULT NULL
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'signup_with_invitation_wrapper';

-- Sessions and keys like an identity provider (issue 12).
--
-- Signing keys gain an algorithm and a state. 0.1.0's keys are HS256: the newest active one
-- stays current (it keeps signing, so nobody's tokens change), other active ones retire (they
-- keep verifying what they signed), and keys 0.1.0 retired (verifying nothing) are revoked. An
-- ES256 standby is published below; rotate_signing_key() makes it current without logging
-- anyone out.
ALTER TABLE nile_auth.signing_keys
    ADD COLUMN alg text,
    ADD COLUMN public_key bytea,
    ADD COLUMN state text,
    ADD COLUMN activated timestamptz,
    ADD COLUMN revoked timestamptz;
UPDATE nile_auth.signing_keys k
   SET alg = 'HS256',
       state = CASE WHEN k.retired IS NOT NULL THEN 'revoked'
                    WHEN k.kid = (SELECT n.kid FROM nile_auth.signing_keys n WHERE n.retired IS NULL
                                   ORDER BY n.created DESC LIMIT 1) THEN 'current'
                    ELSE 'retired' END,
       activated = k.created,
       revoked = k.retired;
UPDATE nile_auth.signing_keys SET retired = now() WHERE state = 'retired';
ALTER TABLE nile_auth.signing_keys
    ALTER COLUMN alg SET NOT NULL,
    ALTER COLUMN state SET NOT NULL,
    DROP CONSTRAINT signing_keys_secret_check,
    ADD CONSTRAINT signing_keys_secret_check CHECK (alg <> 'HS256' OR octet_length(secret) = 32),
    ADD CONSTRAINT signing_keys_alg_check CHECK (alg IN ('ES256', 'EdDSA', 'HS256')),
    ADD CONSTRAINT signing_keys_public_key_check CHECK ((alg = 'HS256') = (public_key IS NULL)),
    ADD CONSTRAINT signing_keys_state_check CHECK (state IN ('standby', 'current', 'retired', 'revoked'));
CREATE UNIQUE INDEX signing_keys_one_current ON nile_auth.signing_keys ((true)) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_standby ON nile_auth.signing_keys ((true)) WHERE state = 'standby';

-- sql/finalize.sql, as a fresh install runs it: a new current or standby key replaces the one
-- there is (what a restore needs).
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

-- Sessions and their refresh tokens (sql/schema.sql).
CREATE TABLE nile_auth.sessions (
    id          uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    user_id     uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    tenant_id   uuid REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    api_key_id  uuid REFERENCES nile_auth.api_keys (id) ON DELETE CASCADE,
    refresh_key bytea NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    not_after   timestamptz NOT NULL,
    ended       timestamptz,
    end_reason  text CONSTRAINT sessions_end_reason_check
                CHECK (end_reason IN ('logout', 'revoked', 'refresh_token_reused', 'password_changed',
                                      'deactivated', 'api_key_revoked'))
);
CREATE INDEX sessions_user_idx ON nile_auth.sessions (user_id) WHERE ended IS NULL;
CREATE INDEX sessions_api_key_idx ON nile_auth.sessions (api_key_id) WHERE ended IS NULL AND api_key_id IS NOT NULL;
CREATE TABLE nile_auth.refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES nile_auth.sessions (id) ON DELETE CASCADE,
    created    timestamptz NOT NULL DEFAULT now(),
    spent      timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON nile_auth.refresh_tokens (session_id, created);
REVOKE ALL ON nile_auth.sessions, nile_auth.refresh_tokens FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('nile_auth.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.refresh_tokens', '');
CREATE TRIGGER invalidate_backend_caches
    AFTER UPDATE OF ended OR DELETE OR TRUNCATE ON nile_auth.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION nile_auth.invalidate_backend_caches();

-- Key administration: rotate_signing_key takes the algorithm of the new standby (a symbol of
-- its own: 0.1.0's rotate_signing_key_wrapper took no argument). retire_signing_key is gone:
-- what it did (tokens stop verifying) is revoke_signing_key now, and a retired key verifies.
DROP FUNCTION nile_auth.rotate_signing_key();
DROP FUNCTION nile_auth.retire_signing_key(text);
CREATE FUNCTION nile_auth._add_signing_key(
    "alg" TEXT,
    "state" TEXT
) RETURNS TEXT
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'add_signing_key_wrapper';

CREATE FUNCTION nile_auth.claims() RETURNS jsonb
STRICT STABLE PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'claims_sql_wrapper';

CREATE FUNCTION nile_auth.jwks() RETURNS jsonb
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'jwks_wrapper';

CREATE FUNCTION nile_auth.list_sessions() RETURNS SETOF jsonb
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'list_sessions_wrapper';

CREATE FUNCTION nile_auth.list_signing_keys() RETURNS SETOF jsonb
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'list_signing_keys_wrapper';

CREATE FUNCTION nile_auth.logout(
    "scope" TEXT DEFAULT 'local'
) RETURNS bigint
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'logout_wrapper';

CREATE FUNCTION nile_auth.refresh(
    "refresh_token" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'refresh_wrapper';

CREATE FUNCTION nile_auth.revoke_session(
    "id" uuid
) RETURNS bool
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_session_wrapper';

CREATE FUNCTION nile_auth.revoke_signing_key(
    "kid" TEXT
) RETURNS bool
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_signing_key_wrapper';

CREATE FUNCTION nile_auth.rotate_signing_key(
    "alg" TEXT DEFAULT NULL
) RETURNS TEXT
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'rotate_signing_key_to_wrapper';

REVOKE EXECUTE ON FUNCTION nile_auth.rotate_signing_key(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth.revoke_signing_key(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth.list_signing_keys() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nile_auth._add_signing_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nile_auth.rotate_signing_key(text) TO nile_auth_admin;
GRANT EXECUTE ON FUNCTION nile_auth.revoke_signing_key(text) TO nile_auth_admin;
GRANT EXECUTE ON FUNCTION nile_auth.list_signing_keys() TO nile_auth_admin;

-- The ES256 key that rotate_signing_key() will make current, published from now on.
SELECT nile_auth._add_signing_key('ES256', 'standby');


-- Issue 13: the identity and tenant checks are parallel safe. In a parallel plan every process
-- verifies against the statement's snapshot and start time, so workers and their leader agree
-- (src/identity/verify.rs), and a large tenant's scan gets the parallel plan a hand-written
-- query gets.
ALTER FUNCTION nile_auth.user_id() PARALLEL SAFE;
ALTER FUNCTION nile_auth.tenant_id() PARALLEL SAFE;
ALTER FUNCTION nile_auth.is_trusted_backend() PARALLEL SAFE;

-- Issue 15 (Citus). A deleted tenant's memberships, and a membership's teams, now end in the
-- functions that end them (src/tenancy/manage.rs, end_memberships): on Citus a trigger may not
-- write another table.
DROP TRIGGER end_memberships_of_deleted_tenant ON nile_auth.tenants;
DROP FUNCTION nile_auth._end_memberships_of_deleted_tenant();

-- The built-in tables' policies without scalar subqueries, which Citus refuses: per-row checks
-- (src/tenancy/visibility.rs) replace the lists of visible tenants and users.
CREATE FUNCTION nile_auth._sees_tenant(id uuid) RETURNS bool
STRICT STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'sees_tenant_wrapper';
CREATE FUNCTION nile_auth._sees_user(id uuid) RETURNS bool
STRICT STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'sees_user_wrapper';
ALTER POLICY visible_tenants ON nile_auth.tenants USING (nile_auth._sees_tenant(id));
ALTER POLICY visible_users ON nile_auth.users USING (nile_auth._sees_user(id));
DROP FUNCTION nile_auth._my_tenant_ids();
DROP FUNCTION nile_auth._visible_user_ids();

-- nile_auth.distribute() (sql/citus.sql, as a fresh install runs it).
-- One node's preparation, run by distribute() on the coordinator and through Citus on each
-- worker: drops the foreign keys of nile_auth tables Citus does not know yet and, on a worker
-- (`forget_rows`), empties them. Tables Citus already knows are left alone (on a worker, a
-- TRUNCATE of one would empty it on every node).
CREATE FUNCTION nile_auth._prepare_node_for_citus(forget_rows boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fk record;
    local_tables text;
BEGIN
    FOR fk IN SELECT con.conrelid::regclass AS rel, con.conname
                FROM pg_constraint con
               WHERE con.contype = 'f' AND con.connamespace = 'nile_auth'::regnamespace
                 AND NOT EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = con.conrelid)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
    END LOOP;
    IF forget_rows THEN
        SELECT string_agg(c.oid::regclass::text, ', ') INTO local_tables
          FROM pg_class c
         WHERE c.relnamespace = 'nile_auth'::regnamespace AND c.relkind = 'r'
           AND NOT EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = c.oid);
        IF local_tables IS NOT NULL THEN
            EXECUTE 'TRUNCATE ' || local_tables;
        END IF;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth._prepare_node_for_citus(boolean) FROM PUBLIC;

-- Returns how many tables it distributed: 0 when they already were (it may be run again, for
-- example after a failure on a worker was fixed).
-- The triggers (cache invalidation, key replacement) run on each node's copy and write nothing
-- but that copy (sql/finalize.sql): what citus.enable_unsafe_triggers asks to be sure of. The
-- NOTICEs of TRUNCATE and Citus's copying are not shown.
CREATE FUNCTION nile_auth.distribute() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on
    SET client_min_messages = warning AS $$
DECLARE
    tables regclass[];
    known integer;
    add_fks text[];
    add_fk text;
    failure text;
    t regclass;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied: nile_auth.distribute() is for superusers' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000',
            HINT = 'Run CREATE EXTENSION citus and add the worker nodes first (docs/scale-out.md).';
    END IF;
    IF NOT citus_is_coordinator() THEN
        RAISE EXCEPTION 'nile_auth.distribute() runs on the coordinator' USING ERRCODE = '55000';
    END IF;
    -- Without a copy on the coordinator, its checks would find no keys and no members.
    IF NOT EXISTS (SELECT FROM pg_dist_node WHERE groupid = 0) THEN
        RAISE EXCEPTION 'the coordinator is not in the Citus metadata' USING ERRCODE = '55000',
            HINT = 'Run SELECT citus_set_coordinator_host(''<its host>'', <its port>) first.';
    END IF;

    SELECT array_agg(c.oid::regclass ORDER BY c.relname),
           count(*) FILTER (WHERE EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = c.oid))
      INTO tables, known
      FROM pg_class c
     WHERE c.relnamespace = 'nile_auth'::regnamespace AND c.relkind = 'r';
    IF EXISTS (SELECT FROM pg_dist_partition p
                WHERE p.logicalrelid = ANY (tables) AND (p.partmethod <> 'n' OR p.repmodel <> 't')) THEN
        RAISE EXCEPTION 'a nile_auth table is distributed, but not as a reference table' USING ERRCODE = '55000',
            HINT = 'Undistribute it (undistribute_table) and run nile_auth.distribute() again.';
    END IF;
    IF known = cardinality(tables) THEN
        RETURN 0;
    ELSIF known > 0 THEN
        RAISE EXCEPTION 'only some nile_auth tables are reference tables' USING ERRCODE = '55000',
            HINT = 'Undistribute them (undistribute_table) and run nile_auth.distribute() again.';
    END IF;

    SELECT array_agg(format('ALTER TABLE %s ADD CONSTRAINT %I %s', con.conrelid::regclass, con.conname,
                            pg_get_constraintdef(con.oid)))
      INTO add_fks
      FROM pg_constraint con
     WHERE con.contype = 'f' AND con.conrelid = ANY (tables);
    SELECT string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') INTO failure
      FROM run_command_on_workers('SELECT nile_auth._prepare_node_for_citus(true)') w
     WHERE NOT w.success;
    IF failure IS NOT NULL THEN
        RAISE EXCEPTION 'could not prepare every worker: %', failure USING ERRCODE = '55000',
            HINT = 'nile_auth must be installed on every worker (CREATE EXTENSION on the coordinator installs it there).';
    END IF;
    PERFORM nile_auth._prepare_node_for_citus(false);

    FOREACH t IN ARRAY tables LOOP
        PERFORM create_reference_table(t);
    END LOOP;
    FOREACH add_fk IN ARRAY COALESCE(add_fks, '{}') LOOP
        EXECUTE add_fk;
    END LOOP;
    -- The coordinator's rows are in the shards now; the tables' own storage would be stale.
    FOREACH t IN ARRAY tables LOOP
        PERFORM truncate_local_data_after_distributing_table(t);
    END LOOP;
    RETURN cardinality(tables);
END
$$;
REVOKE EXECUTE ON FUNCTION nile_auth.distribute() FROM PUBLIC;
