-- An application role with USAGE on the schema can call the functions and nothing more: no
-- private table is readable and no table is writable directly.
\c - nile_app
SELECT test_util.try('SELECT * FROM nile_auth.credentials') AS read_credentials;
SELECT test_util.try('SELECT * FROM nile_auth.signing_keys') AS read_signing_keys;
SELECT test_util.try('SELECT password_hash FROM nile_auth.credentials LIMIT 1') AS read_hash;
SELECT test_util.try($$INSERT INTO nile_auth.users (email) VALUES ('direct@example.com')$$) AS insert_users;
SELECT test_util.try($$UPDATE nile_auth.users SET email = 'x@example.com'$$) AS update_users;
SELECT test_util.try('DELETE FROM nile_auth.users') AS delete_users;
SELECT test_util.try($$INSERT INTO nile_auth.tenants (name) VALUES ('direct')$$) AS insert_tenants;
SELECT test_util.try('DELETE FROM nile_auth.tenant_users') AS delete_tenant_users;
SELECT test_util.try($$INSERT INTO nile_auth.credentials VALUES (gen_random_uuid(), 'x')$$) AS insert_credentials;
SELECT test_util.try($$UPDATE nile_auth.signing_keys SET retired = NULL$$) AS update_signing_keys;
SELECT test_util.try('TRUNCATE nile_auth.signing_keys') AS truncate_signing_keys;
SELECT test_util.try('SELECT * FROM nile_auth._user_profiles') AS private_view;
-- Settings that protect everyone are the superuser's. The library is preloaded
-- (shared_preload_libraries), so there is no unloaded window with placeholders: SET fails.
SHOW nile_auth.token_max_age;
SELECT test_util.try('SET nile_auth.token_max_age = 999999') AS set_token_max_age;
SELECT test_util.try('SET nile_auth.require_token = off') AS set_require_token;
-- The public functions work.
SELECT (nile_auth.login('mary@example.com', 'mary had a lamb') ? 'token') AS can_log_in;
SELECT nile_auth.uuid_generate_v7() IS NOT NULL AS can_make_ids;
-- No error message carries a secret: a failed login with a password shows only the fixed text.
SELECT test_util.try($$SELECT nile_auth.login('mary@example.com', 'Secret-Password-123')$$) AS message;
-- nile_auth.distribute() (Citus) is for superusers; without Citus it says so and changes nothing.
SELECT test_util.try('SELECT nile_auth.distribute()') AS distribute_as_app;
\c - postgres
SELECT test_util.try('SELECT nile_auth.distribute()') AS distribute_without_citus;
SELECT count(*) AS foreign_keys_kept FROM pg_constraint WHERE contype = 'f' AND connamespace = 'nile_auth'::regnamespace;
