-- The demo: signup, login, authenticate, me, as a plain application role.
\set ECHO queries
CREATE EXTENSION nile_auth;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_app') THEN CREATE ROLE demo_app LOGIN; END IF;
END $$;
GRANT USAGE ON SCHEMA nile_auth TO demo_app;

\c - demo_app
SELECT jsonb_pretty(nile_auth.signup('shaun@example.com', 'correct horse battery', 'Shaun', 'Managed Expenses'));
SELECT nile_auth.login('shaun@example.com', 'correct horse battery')->'token'->>'jwt' AS jwt \gset
SELECT nile_auth.authenticate(:'jwt');
SELECT nile_auth.user_id();
SELECT jsonb_pretty(nile_auth.me());
-- A wrong password is refused with SQLSTATE 28P01:
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
SELECT nile_auth.login('shaun@example.com', 'wrong password');
