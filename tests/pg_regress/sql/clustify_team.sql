-- The Clustify scenario, continued (clustify.sql sets it up; this part runs last in the
-- schedule, because the tests between them use Shaun and Mary as clustify.sql leaves them): the
-- team grows by invitation, an application policy checks roles, and Shaun leaves for good.
\c - postgres
SELECT id AS managed FROM nile_auth.tenants WHERE name = 'Managed Expenses' \gset
\c - clustify_web
SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt' AS shaun \gset
SELECT nile_auth.login('mary@clustify.dev', 'mary password 1')->'token'->>'jwt' AS mary \gset
-- Only owners and admins may delete clusters: an application policy with has_role(),
-- restrictive (tenant isolation refuses a permissive policy beside it, as that would widen it).
\c - clustify_owner
CREATE POLICY only_admins_delete ON clustify.clusters AS RESTRICTIVE FOR DELETE
    USING (nile_auth.has_role('owner') OR nile_auth.has_role('admin'));
\c - clustify_web
-- Mary, a plain member of Managed Expenses, cannot delete dev.
SELECT nile_auth.authenticate(:'mary') IS NOT NULL AS mary_in;
SELECT nile_auth.set_tenant(:'managed') IS NOT NULL AS tenant_set;
WITH d AS (DELETE FROM clustify.clusters WHERE name = 'dev' RETURNING 1) SELECT count(*) AS member_deleted FROM d;
-- Shaun may not delete his account while he is the last owner of a tenant with other members.
SELECT nile_auth.authenticate(:'shaun') AS shaun_id \gset
SELECT test_util.try('SELECT nile_auth.delete_user()') AS last_owner_deletes;
-- Shaun hands ownership to Mary.
SELECT nile_auth.add_member(:'managed', 'mary@clustify.dev', '{owner}')->'roles' AS mary_roles;
-- Mary (owner) invites Bob to Managed Expenses as admin. A token to be mailed is never handed to
-- an end-user role, which a user may drive directly ...
SELECT nile_auth.authenticate(:'mary') IS NOT NULL AS mary_in;
SELECT test_util.try(format('SELECT nile_auth.invite(%L, %L, %L)', 'bob@clustify.dev', '{admin}', :'managed')) AS web_tier_invites;
RESET nile.auth_token;
RESET nile.tenant_id;
-- ... so the application's mailer, a backend role, invites for Mary.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'mary', :'managed') IS NOT NULL AS mary_in;
SELECT nile_auth.invite('bob@clustify.dev', '{admin}')->>'token' AS bob_invitation \gset
COMMIT;
\c - clustify_web
-- Bob signs up with the invitation and sees MyFirstCluster.
SELECT nile_auth.signup('bob@clustify.dev', 'bob password 1', 'Bob', NULL, :'bob_invitation')->'token'->>'jwt' AS bob \gset
SELECT nile_auth.authenticate(:'bob') IS NOT NULL AS bob_in;
SELECT nile_auth.set_tenant(:'managed') IS NOT NULL AS tenant_set;
SELECT name FROM clustify.clusters ORDER BY name;
-- Bob (admin) deletes dev: the application policy allows it.
WITH d AS (DELETE FROM clustify.clusters WHERE name = 'dev' RETURNING 1) SELECT count(*) AS admin_deleted FROM d;
-- Shaun deletes his account: his old token is refused at once, in this session too.
SELECT nile_auth.authenticate(:'shaun') IS NOT NULL AS shaun_in;
SELECT nile_auth.delete_user() AS shaun_deleted;
SELECT test_util.try('SELECT count(*) FROM clustify.clusters') AS shaun_session_after;
SELECT test_util.try(format('SELECT nile_auth.authenticate(%L)', :'shaun')) AS shaun_token_after;
RESET nile.auth_token;
RESET nile.tenant_id;
-- His email can sign up again, as a new user.
SELECT nile_auth.signup('shaun@clustify.dev', 'shaun password 2')->>'id' <> :'shaun_id' AS shaun_signs_up_anew;
\c - postgres
SELECT name, tenant_id = :'managed' AS in_managed FROM clustify.clusters ORDER BY name;
SELECT u.name, tu.roles, tu.origin FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id
 WHERE tu.tenant_id = :'managed' AND tu.deleted IS NULL ORDER BY u.name;
