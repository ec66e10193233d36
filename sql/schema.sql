-- nile_auth tables. Runs first in CREATE EXTENSION, inside schema nile_auth.
--
-- Public tables (users, tenants, tenant_users) are read through the functions and, for
-- application roles, through row-level security (see policies). Private tables (credentials,
-- signing_keys) are never granted to anyone: only the extension's SECURITY DEFINER functions,
-- which run as the extension owner, read them.

CREATE TABLE nile_auth.users (
    id             uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    email          text NOT NULL,
    name           text,
    given_name     text,
    family_name    text,
    picture        text,
    email_verified timestamptz,
    metadata       jsonb NOT NULL DEFAULT '{}',
    created        timestamptz NOT NULL DEFAULT now(),
    updated        timestamptz NOT NULL DEFAULT now(),
    deleted        timestamptz,
    -- Set while the account is deactivated: no login, no token verifies.
    deactivated    timestamptz,
    -- Tokens issued before this instant no longer verify (password change, reset, deactivation).
    tokens_valid_after timestamptz
);
-- Unique regardless of letter case, among live users; the address is stored as given.
CREATE UNIQUE INDEX users_email_key ON nile_auth.users (lower(email)) WHERE deleted IS NULL;

CREATE TABLE nile_auth.tenants (
    id      uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    name    text,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    deleted timestamptz
);

CREATE TABLE nile_auth.tenant_users (
    tenant_id uuid NOT NULL REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    roles     text[] NOT NULL DEFAULT '{member}',
    metadata  jsonb NOT NULL DEFAULT '{}',
    created   timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now(),
    deleted   timestamptz,
    -- How the membership began: the user created the tenant, the tenant created the user
    -- (create_tenant_user), the user accepted an invitation, or someone else added them. All
    -- but 'added' give the tenant's owners and admins power over the user's account.
    origin    text NOT NULL DEFAULT 'added'
              CONSTRAINT tenant_users_origin_check
              CHECK (origin IN ('created_tenant', 'created_by_tenant', 'accepted_invitation', 'added')),
    PRIMARY KEY (tenant_id, user_id)
);
-- "Which tenants is this user in?" (me(), membership checks by user).
CREATE INDEX tenant_users_user_id_idx ON nile_auth.tenant_users (user_id, tenant_id);

-- Private: argon2id PHC strings (algorithm and parameters are inside each string).
-- locked_until is lock_account's manual lock ('infinity' until unlock_account).
CREATE TABLE nile_auth.credentials (
    user_id           uuid PRIMARY KEY REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    password_hash     text NOT NULL,
    updated           timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz
);

-- Private: failed password checks, as the lockout worker last wrote them down. The live count
-- is in shared memory; this is where it comes back from after a restart. `account` is a
-- user's id, or a key derived from an email nobody registered: both kinds of failure write the
-- same rows, so table statistics do not tell them apart. No foreign key, for the same reason.
CREATE TABLE nile_auth.login_failures (
    account      uuid PRIMARY KEY,
    failures     integer NOT NULL,
    last_failure timestamptz NOT NULL,
    locked_until timestamptz              -- the automatic lock, after max_failed_logins failures
);
CREATE INDEX login_failures_last_failure_idx ON nile_auth.login_failures (last_failure);

-- Private: one-time tokens for password reset, email verification and email change. Only a
-- SHA-256 of the token is stored; the token itself is shown once, to be mailed.
CREATE TABLE nile_auth.one_time_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    purpose    text NOT NULL
               CONSTRAINT one_time_tokens_purpose_check
               CHECK (purpose IN ('password_reset', 'email_verification', 'email_change')),
    email      text NOT NULL,            -- the address the token was issued for (email_change: the new one)
    created    timestamptz NOT NULL DEFAULT now(),
    expires    timestamptz NOT NULL,
    used       timestamptz
);
CREATE INDEX one_time_tokens_user_idx ON nile_auth.one_time_tokens (user_id, purpose);

-- Private: API keys. Only a SHA-256 of the key is stored; `prefix` identifies it in listings.
CREATE TABLE nile_auth.api_keys (
    id        uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    user_id   uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    tenant_id uuid REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    name      text NOT NULL,
    prefix    text NOT NULL,
    key_hash  bytea NOT NULL UNIQUE,
    created   timestamptz NOT NULL DEFAULT now(),
    expires   timestamptz,
    revoked   timestamptz,
    last_used timestamptz
);
CREATE INDEX api_keys_user_idx ON nile_auth.api_keys (user_id);

-- Private: invitations to join a tenant. Only a SHA-256 of the token is stored; the token is
-- shown once, to be mailed to `email`. Pending: none of accepted, revoked set, and not expired.
CREATE TABLE nile_auth.invitations (
    id          uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    tenant_id   uuid NOT NULL REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    email       text NOT NULL,            -- stored form (NFC), compared case-insensitively
    roles       text[] NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    invited_by  uuid,                     -- NULL when the trusted backend invited
    created     timestamptz NOT NULL DEFAULT now(),
    expires     timestamptz NOT NULL,
    accepted    timestamptz,
    accepted_by uuid,
    revoked     timestamptz
);
-- One pending invitation per tenant and address: a new one replaces it.
CREATE UNIQUE INDEX invitations_pending_key ON nile_auth.invitations (tenant_id, lower(email))
    WHERE accepted IS NULL AND revoked IS NULL;
CREATE INDEX invitations_email_idx ON nile_auth.invitations (lower(email)) WHERE accepted IS NULL AND revoked IS NULL;

-- Teams: groups of members inside a tenant (Nexla). Tenant data: readable under row-level
-- security like an isolated application table (sql/teams.sql), written only by the functions.
CREATE TABLE nile_auth.teams (
    id        uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    tenant_id uuid NOT NULL REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,
    name      text NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX teams_tenant_id_idx ON nile_auth.teams (tenant_id);
-- A team member is a live member of the team's tenant: the row goes when that membership ends
-- (sql/teams.sql). tenant_id repeats the team's, so policies and team_ids() need no join.
CREATE TABLE nile_auth.team_members (
    team_id   uuid NOT NULL REFERENCES nile_auth.teams (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES nile_auth.tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX team_members_user_idx ON nile_auth.team_members (tenant_id, user_id);

-- Append-only audit trail. Never holds a password, token, key or hash.
CREATE TABLE nile_auth.audit_log (
    id        uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),  -- time-ordered; no sequence to lose in a dump
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor     uuid,            -- the user who acted; NULL for the trusted backend or anonymous
    tenant_id uuid,
    event     text NOT NULL,
    target    text,            -- what was acted on: a user id, tenant id, key id or email
    details   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor_idx ON nile_auth.audit_log (actor, at);
CREATE INDEX audit_log_tenant_idx ON nile_auth.audit_log (tenant_id, at);
CREATE INDEX audit_log_target_idx ON nile_auth.audit_log (target, at);

-- Private: signing keys. `secret` is the private part: an HS256 secret, or a PKCS#8 document for
-- ES256 and EdDSA, whose raw public key is `public_key` (what jwks() publishes). States:
-- standby (published, not signing yet), current (signs; exactly one), retired (stopped signing,
-- verifies its tokens until they expire), revoked (verifies nothing). See src/keys.rs.
CREATE TABLE nile_auth.signing_keys (
    kid        text PRIMARY KEY,
    secret     bytea NOT NULL
               CONSTRAINT signing_keys_secret_check CHECK (alg <> 'HS256' OR octet_length(secret) = 32),
    created    timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired    timestamptz,           -- stopped signing
    alg        text NOT NULL CONSTRAINT signing_keys_alg_check CHECK (alg IN ('ES256', 'EdDSA', 'HS256')),
    public_key bytea CONSTRAINT signing_keys_public_key_check CHECK ((alg = 'HS256') = (public_key IS NULL)),
    state      text NOT NULL
               CONSTRAINT signing_keys_state_check CHECK (state IN ('standby', 'current', 'retired', 'revoked')),
    activated  timestamptz,           -- became current
    revoked    timestamptz            -- stopped verifying
);
CREATE UNIQUE INDEX signing_keys_one_current ON nile_auth.signing_keys ((true)) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_standby ON nile_auth.signing_keys ((true)) WHERE state = 'standby';

-- Private: sessions, opened by login, signup and login_with_api_key (src/sessions). Access
-- tokens name their session (claim sid) and stop verifying when it ends. `refresh_key` derives
-- each refresh token from the one before; it never leaves this table.
CREATE TABLE nile_auth.sessions (
    id          uuid PRIMARY KEY DEFAULT nile_auth.uuid_generate_v7(),
    user_id     uuid NOT NULL REFERENCES nile_auth.users (id) ON DELETE CASCADE,
    tenant_id   uuid REFERENCES nile_auth.tenants (id) ON DELETE CASCADE,   -- tokens limited to this tenant
    api_key_id  uuid REFERENCES nile_auth.api_keys (id) ON DELETE CASCADE,  -- opened with this API key
    refresh_key bytea NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    not_after   timestamptz NOT NULL,                -- created + nile_auth.session_max_age
    ended       timestamptz,
    end_reason  text CONSTRAINT sessions_end_reason_check
                CHECK (end_reason IN ('logout', 'revoked', 'refresh_token_reused', 'password_changed',
                                      'deactivated', 'api_key_revoked'))
);
CREATE INDEX sessions_user_idx ON nile_auth.sessions (user_id) WHERE ended IS NULL;
CREATE INDEX sessions_api_key_idx ON nile_auth.sessions (api_key_id) WHERE ended IS NULL AND api_key_id IS NOT NULL;

-- Private: refresh tokens of live sessions, as SHA-256 only. A spent token stays to recognise
-- its reuse; the rows go when the session ends. The newest row's `created` is the session's
-- last refresh (the idle timeout counts from it): a refresh never writes the session row.
CREATE TABLE nile_auth.refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES nile_auth.sessions (id) ON DELETE CASCADE,
    created    timestamptz NOT NULL DEFAULT now(),
    spent      timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON nile_auth.refresh_tokens (session_id, created);

-- The JSON shape of a user (Nile's User object), one row per live user; tenants is the list of
-- their live tenants' ids in id order (tenant ids are time-ordered, so roughly creation order;
-- the (user_id, tenant_id) index yields them sorted). A view rather than a function: the planner
-- inlines it into each query (list_users() joins 100 members in one plan instead of 100
-- function executions). Private: only the extension's functions read it.
CREATE VIEW nile_auth._user_profiles AS
SELECT u.id, u.created, to_jsonb(p) AS profile
  FROM nile_auth.users u
 CROSS JOIN LATERAL (
       -- to_jsonb of a row: measurably cheaper per user than jsonb_build_object.
       SELECT u.id, u.email, u.name, u.given_name AS "givenName", u.family_name AS "familyName",
              u.picture, u.email_verified AS "emailVerified", u.created, u.updated,
              -- A deleted tenant's memberships are ended with it (sql/finalize.sql), so live
              -- memberships alone give the user's live tenants.
              ARRAY(SELECT tu.tenant_id FROM nile_auth.tenant_users tu
                     WHERE tu.user_id = u.id AND tu.deleted IS NULL
                     ORDER BY tu.tenant_id) AS tenants) p
 WHERE u.deleted IS NULL;

-- Application roles change nothing directly: every write goes through the functions.
REVOKE ALL ON ALL TABLES IN SCHEMA nile_auth FROM PUBLIC;

-- pg_dump keeps the rows of extension tables only when they are registered here.
SELECT pg_catalog.pg_extension_config_dump('nile_auth.users', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.tenant_users', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.credentials', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.login_failures', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.signing_keys', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.one_time_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.invitations', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.teams', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.team_members', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('nile_auth.refresh_tokens', '');
