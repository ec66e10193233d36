-- The roles, schema and grants recipe of docs/apps.md ("Roles, schema and grants"), as the
-- client apps' database uses it. Run once per database by a superuser (or a role with
-- CREATEROLE and CREATE on the database):
--   clustify_migrate  owns the application schema and its tables (migrations run as it);
--   clustify_api      the trusted application backend (a member of nile_auth_backend): admin
--                     jobs with no end user, such as a worker seeding a tenant;
--   clustify_web      what the web tier connects as for end users: it trusts nothing but the
--                     token each request sets (nile_auth.set_context).
CREATE EXTENSION IF NOT EXISTS nile_auth;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clustify_migrate') THEN CREATE ROLE clustify_migrate LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clustify_api') THEN CREATE ROLE clustify_api LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clustify_web') THEN CREATE ROLE clustify_web LOGIN; END IF;
END $$;
GRANT nile_auth_backend TO clustify_api;
-- PostgreSQL 15's public schema refuses CREATE to non-owners: the app gets a schema of its own.
CREATE SCHEMA clustify AUTHORIZATION clustify_migrate;
GRANT USAGE ON SCHEMA nile_auth TO clustify_migrate, clustify_api, clustify_web;
GRANT USAGE ON SCHEMA clustify TO clustify_api, clustify_web;
-- Tables the migration role creates later are readable and writable by both app roles.
ALTER DEFAULT PRIVILEGES FOR ROLE clustify_migrate IN SCHEMA clustify
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO clustify_api, clustify_web;

-- The migration, as the owner: the table, made tenant-isolated in one call.
SET ROLE clustify_migrate;
-- tenant_id leads the primary key: a unique violation then never tells one tenant about
-- another's rows (enable_tenant_isolation warns otherwise) and the key serves tenant scans.
CREATE TABLE clustify.clusters (
    tenant_id uuid NOT NULL,
    id        uuid NOT NULL DEFAULT gen_random_uuid(),
    name      text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT nile_auth.enable_tenant_isolation('clustify.clusters');
RESET ROLE;
