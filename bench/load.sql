-- Loads the benchmark dataset (psql variables: tenants, users, rows, big_rows, keyed_users, app_role,
-- password).
-- Rows go straight into the extension's tables as superuser: signing up a million users would
-- mean a million argon2 hashes. Every bench user shares one real hash of :password.
SET client_min_messages = warning;
CREATE EXTENSION nile_auth;
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') AS create_role \gset
\if :create_role
CREATE ROLE :app_role LOGIN;
\endif
GRANT USAGE ON SCHEMA nile_auth TO :app_role;
-- The application role is the trusted backend in arms 1, 2 and 6 (no token), an end user with one.
GRANT nile_auth_backend TO :app_role;

CREATE TABLE bench_tenants (n int PRIMARY KEY, id uuid NOT NULL UNIQUE);
INSERT INTO bench_tenants SELECT n, nile_auth.uuid_generate_v7() FROM generate_series(0, :tenants - 1) n;
INSERT INTO nile_auth.tenants (id, name) SELECT id, 'tenant ' || n FROM bench_tenants;

CREATE TABLE bench_users (n int PRIMARY KEY, id uuid NOT NULL UNIQUE);
INSERT INTO bench_users SELECT n, nile_auth.uuid_generate_v7() FROM generate_series(0, :users - 1) n;
INSERT INTO nile_auth.users (id, email, name) SELECT id, 'user' || n || '@bench.test', 'User ' || n FROM bench_users;
SELECT nile_auth.signup('template@bench.test', :password) IS NOT NULL AS ignored \gset
INSERT INTO nile_auth.credentials (user_id, password_hash)
SELECT u.id, c.password_hash
  FROM bench_users u, nile_auth.credentials c JOIN nile_auth.users t ON t.id = c.user_id
 WHERE t.email = 'template@bench.test';

-- Each user is in two tenants: n mod T (so user k is in tenant k) and (7n + 1) mod T.
INSERT INTO nile_auth.tenant_users (tenant_id, user_id)
SELECT t.id, u.id FROM bench_users u JOIN bench_tenants t ON t.n = u.n % :tenants
UNION ALL
SELECT t.id, u.id FROM bench_users u JOIN bench_tenants t ON t.n = (u.n * 7 + 1) % :tenants
 WHERE (u.n * 7 + 1) % :tenants <> u.n % :tenants;

-- For arm 6: a tenant of 100 members, and a user in 20 tenants.
INSERT INTO nile_auth.tenants (name) VALUES ('big');
INSERT INTO nile_auth.tenant_users (tenant_id, user_id)
SELECT (SELECT id FROM nile_auth.tenants WHERE name = 'big'), id FROM bench_users WHERE n < 100;
SELECT nile_auth.signup('multi@bench.test', :password) IS NOT NULL AS ignored \gset
INSERT INTO nile_auth.tenant_users (tenant_id, user_id)
SELECT t.id, u.id FROM bench_tenants t, nile_auth.users u WHERE u.email = 'multi@bench.test' AND t.n < 20;
-- For the parallel-plan check: a tenant whose only member is parallel@bench.test, and which gets
-- :big_rows rows below (about a tenth of all the others together).
SELECT nile_auth.signup('parallel@bench.test', :password) IS NOT NULL AS ignored \gset
INSERT INTO nile_auth.tenants (name) VALUES ('parallel');
INSERT INTO nile_auth.tenant_users (tenant_id, user_id)
SELECT t.id, u.id FROM nile_auth.tenants t, nile_auth.users u WHERE t.name = 'parallel' AND u.email = 'parallel@bench.test';

-- The application table, rows spread evenly over the tenants with ids grouped by tenant (tenant
-- n has ids n * rows/tenants and up), then the 'parallel' tenant's rows (ids from :rows up), and
-- the same rows in a table without row-level security for the baselines.
CREATE TABLE items (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, payload text NOT NULL);
INSERT INTO items
SELECT g, t.id, md5(g::text) FROM generate_series(0, :rows - 1) g
  JOIN bench_tenants t ON t.n = g / (:rows / :tenants);
INSERT INTO items
SELECT g, (SELECT id FROM nile_auth.tenants WHERE name = 'parallel'), md5(g::text)
  FROM generate_series(:rows, :rows + :big_rows - 1) g;
CREATE INDEX items_tenant_id_id ON items (tenant_id, id);
CREATE TABLE items_plain (LIKE items INCLUDING INDEXES);
INSERT INTO items_plain SELECT * FROM items;
SELECT nile_auth.enable_tenant_isolation('items') AS ignored \gset
-- The reference arm: the same rows again under a Supabase-style policy that trusts the claims
-- PostgREST puts in request.jwt.claims (the (SELECT …) wrapper is Supabase's advice: the
-- setting is read once per statement). Indexes built after the rows, as that is faster.
CREATE TABLE items_claims (LIKE items_plain);
INSERT INTO items_claims SELECT * FROM items_plain;
ALTER TABLE items_claims ADD PRIMARY KEY (id);
CREATE INDEX ON items_claims (tenant_id, id);
ALTER TABLE items_claims ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY claims ON items_claims
    USING (tenant_id = (SELECT (current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id')::uuid));
GRANT SELECT ON items, items_plain, items_claims, bench_tenants TO :app_role;

-- Arm 3 by users per backend: one session per user u < N, filled by bench/run.py (fill_sessions)
-- through login_with_api_key: u's token, u's first tenant (u mod tenants) and the claims
-- PostgREST would set for that request (the token's payload plus tenant_id).
CREATE TABLE bench_sessions (u int PRIMARY KEY, token text NOT NULL, tenant text NOT NULL, claims text NOT NULL);
GRANT SELECT ON bench_sessions TO :app_role;
-- A JWT's payload (its base64url middle segment, padded for decode()).
CREATE FUNCTION bench_jwt_payload(jwt text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_from(decode(rpad(translate(p, '-_', '+/'), (length(p) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb
      FROM split_part(jwt, '.', 2) p
$$;

-- Arm 4, uncached identity: a distinct valid token per user and signing algorithm, minted by
-- bench/run.py (mint_tokens) through login_with_api_key, which signs as login does without
-- argon2, and a second token of the ES256 batch's sessions from refresh() (batch 'refreshed').
-- The keys: 'bench-key-<n>' for users n < :keyed_users (arms 3 and 4).
INSERT INTO nile_auth.api_keys (user_id, name, prefix, key_hash)
SELECT id, 'bench', 'bench-key-', sha256(convert_to('bench-key-' || n, 'UTF8')) FROM bench_users WHERE n < :keyed_users;
CREATE TABLE bench_tokens (alg text, n int, token text NOT NULL, refresh text, PRIMARY KEY (alg, n));
GRANT SELECT ON bench_tokens TO :app_role;
CREATE FUNCTION bench_identity(i int, key_alg text DEFAULT 'ES256') RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('nile.auth_token', (SELECT token FROM bench_tokens WHERE alg = key_alg AND n = i), true);
    RETURN nile_auth.user_id();
END $$;
-- Arm 4, uncached tenant: user i's token and user i's first tenant (i mod tenants), so with
-- a new i each call both the token and the membership are seen for the first time.
CREATE FUNCTION bench_tenant(i int) RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('nile.auth_token', (SELECT token FROM bench_tokens WHERE alg = 'ES256' AND n = i), true);
    PERFORM set_config('nile.tenant_id', (SELECT id::text FROM bench_tenants
                                              WHERE n = i % (SELECT max(n) + 1 FROM bench_tenants)), true);
    RETURN nile_auth.tenant_id();
END $$;
-- Seconds taken by count(expr) over n rows, timed inside the server.
CREATE FUNCTION bench_seconds(expr text, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
BEGIN
    EXECUTE format('SELECT count(%s) FROM generate_series(1, %s) g', expr, n);
    RETURN extract(epoch FROM clock_timestamp() - started);
END $$;
ANALYZE;
