-- Loads the benchmark dataset (psql variables: tenants, users, rows, app_role, password).
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

-- The application table, rows spread evenly over the tenants with ids grouped by tenant, and
-- the same rows in a table without row-level security for the baselines.
CREATE TABLE items (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, payload text NOT NULL);
INSERT INTO items
SELECT g, t.id, md5(g::text) FROM generate_series(0, :rows - 1) g
  JOIN bench_tenants t ON t.n = g / (:rows / :tenants);
CREATE INDEX items_tenant_id_id ON items (tenant_id, id);
CREATE TABLE items_plain (LIKE items INCLUDING INDEXES);
INSERT INTO items_plain SELECT * FROM items;
SELECT nile_auth.enable_tenant_isolation('items') AS ignored \gset
GRANT SELECT ON items, items_plain, bench_tenants TO :app_role;

-- Arm 4, uncached identity: a distinct valid token per user and signing algorithm, minted by
-- bench/run.py (mint_tokens) through login_with_api_key, which signs as login does without
-- argon2. The keys: 'bench-key-<n>' for users 0 to 20000.
INSERT INTO nile_auth.api_keys (user_id, name, prefix, key_hash)
SELECT id, 'bench', 'bench-key-', sha256(convert_to('bench-key-' || n, 'UTF8')) FROM bench_users WHERE n <= 20000;
CREATE TABLE bench_tokens (alg text, n int, token text NOT NULL, PRIMARY KEY (alg, n));
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
