-- Teams (Nexla) and roles in policies (issue 11): owners and admins manage teams, members list
-- them; teams are tenant data under row-level security; team_ids() and has_role() serve
-- application policies, cached with the membership. As plain roles.
\c - nile_app
SELECT (nile_auth.signup('tara@teams.test', 'tara password 1', NULL, 'Tara Co')->'tenants'->>0) AS tara_co \gset
SELECT (nile_auth.signup('uma@teams.test', 'uma password 1', NULL, 'Uma Co')->'tenants'->>0) AS uma_co \gset
SELECT nile_auth.login('tara@teams.test', 'tara password 1')->'token'->>'jwt' AS tara \gset
SELECT nile_auth.login('uma@teams.test', 'uma password 1')->'token'->>'jwt' AS uma \gset
SELECT nile_auth.signup('val@teams.test', 'val password 1')->'token'->>'jwt' AS val \gset
SELECT id AS val_id FROM nile_auth.users WHERE email = 'val@teams.test' \gset
SELECT id AS tara_id FROM nile_auth.users WHERE email = 'tara@teams.test' \gset
SELECT id AS uma_id FROM nile_auth.users WHERE email = 'uma@teams.test' \gset
SELECT nile_auth.add_member(:'tara_co', 'val@teams.test') IS NOT NULL AS val_member;

-- Tara (owner) makes two teams and puts Val in one.
BEGIN;
SELECT nile_auth.set_context(:'tara', :'tara_co') IS NOT NULL AS tara_in;
SELECT nile_auth.create_team('Blue') AS blue \gset
SELECT array(SELECT jsonb_object_keys(:'blue'::jsonb) ORDER BY 1) AS team_keys, :'blue'::jsonb->'members' AS no_members;
SELECT :'blue'::jsonb->>'id' AS blue_id \gset
SELECT nile_auth.create_team('Red', :'tara_co')->>'id' AS red_id \gset
SELECT nile_auth.add_team_member(:'blue_id', :'val_id')->'members' = jsonb_build_array(:'val_id') AS val_in_blue;
SELECT nile_auth.add_team_member(:'blue_id', :'val_id')->'members' = jsonb_build_array(:'val_id') AS added_twice_same;
SELECT nile_auth.add_team_member(:'red_id', :'tara_id') IS NOT NULL AS tara_in_red;
-- Bad input, and a user who is not a member of the tenant.
SELECT test_util.try($$SELECT nile_auth.create_team('  ')$$) AS empty_name;
SELECT test_util.try('SELECT nile_auth.create_team(NULL)') AS null_name;
SELECT test_util.try(format('SELECT nile_auth.add_team_member(%L, %L)', :'blue_id', :'uma_id')) AS outsider_into_team;
SELECT test_util.try(format('SELECT nile_auth.add_team_member(%L, %L)', gen_random_uuid(), :'val_id')) AS unknown_team;
SELECT test_util.try(format('SELECT nile_auth.remove_team_member(%L, %L)', :'red_id', :'val_id')) AS remove_non_member;
COMMIT;

-- Val (member) lists the teams and sees team_ids(); may not manage them.
BEGIN;
SELECT nile_auth.set_context(:'val', :'tara_co') IS NOT NULL AS val_in;
SELECT t->>'name' AS team, jsonb_array_length(t->'members') AS members FROM nile_auth.list_teams() t;
SELECT nile_auth.team_ids() = ARRAY[:'blue_id']::uuid[] AS val_teams;
SELECT name FROM nile_auth.teams ORDER BY name;
SELECT test_util.try($$SELECT nile_auth.create_team('Mine')$$) AS member_creates;
SELECT test_util.try(format('SELECT nile_auth.add_team_member(%L, %L)', :'red_id', :'val_id')) AS member_joins_red;
SELECT test_util.try(format('SELECT nile_auth.delete_team(%L)', :'blue_id')) AS member_deletes;
SELECT nile_auth.has_role('member') AS val_member, nile_auth.has_role('owner') AS val_owner,
       nile_auth.has_role('owner', :'tara_co') AS val_owner_explicit;
COMMIT;

-- Uma (outsider): Tara Co's teams do not exist for her, in the functions or the table.
BEGIN;
SELECT nile_auth.set_context(:'uma', :'uma_co') IS NOT NULL AS uma_in;
SELECT count(*) AS uma_sees_teams FROM nile_auth.teams;
SELECT count(*) AS uma_sees_team_members FROM nile_auth.team_members;
SELECT count(*) AS uma_lists FROM nile_auth.list_teams();
SELECT test_util.try(format('SELECT nile_auth.delete_team(%L)', :'blue_id')) AS outsider_deletes;
SELECT test_util.try(format('SELECT nile_auth.add_team_member(%L, %L)', :'blue_id', :'uma_id')) AS outsider_joins;
SELECT test_util.try(format('SELECT nile_auth.create_team(%L, %L)', 'x', :'tara_co')) AS outsider_creates;
SELECT nile_auth.team_ids() AS uma_teams;
SELECT nile_auth.has_role('owner') AS uma_owner_here, nile_auth.has_role('owner', :'tara_co') AS uma_owner_there;
COMMIT;
-- has_role: false with no tenant; true for the trusted backend; NULL role is 22023.
BEGIN;
SELECT nile_auth.set_context(:'tara') IS NOT NULL AS tara_in;
SELECT nile_auth.has_role('owner') AS no_tenant, nile_auth.has_role('owner', :'tara_co') AS given_tenant;
SELECT test_util.try('SELECT nile_auth.has_role(NULL)') AS null_role;
COMMIT;
SELECT nile_auth.has_role('anything') AS backend_holds_every_role;
-- An end-user role without a token has no roles to check: 28000, as for tenant_id().
\c - clustify_web
SET nile.tenant_id = :'tara_co';
SELECT test_util.try($$SELECT nile_auth.has_role('owner')$$) AS no_token;
RESET nile.tenant_id;

-- Roles are cached with the membership across transactions; a change in another backend
-- reaches this one at its next transaction, as does the end of the membership.
\c - postgres
SELECT nile_auth.authenticate(:'val') IS NOT NULL AS val_in;
SET nile.tenant_id = :'tara_co';
SELECT nile_auth.has_role('admin') AS val_admin_before;
SELECT roles AS promoted_elsewhere
  FROM dblink(format('host=%s port=%s dbname=%s user=nile_app',
                     current_setting('unix_socket_directories'), current_setting('port'), current_database()),
              format('SELECT nile_auth.add_member(%L, %L, %L)->>%L', :'tara_co', 'val@teams.test', '{admin}', 'roles')) AS t(roles text);
SELECT nile_auth.has_role('admin') AS val_admin_after, nile_auth.has_role('member') AS val_member_after;
-- Val, now admin, manages teams.
SELECT nile_auth.create_team('Green')->>'name' AS admin_creates;
SELECT removed AS val_removed_elsewhere
  FROM dblink(format('host=%s port=%s dbname=%s user=nile_app',
                     current_setting('unix_socket_directories'), current_setting('port'), current_database()),
              format('SELECT nile_auth.unlink_user(%L, %L)', :'val_id', :'tara_co')) AS t(removed boolean);
SELECT test_util.try($$SELECT nile_auth.has_role('admin')$$) AS val_after_removal;
RESET nile.tenant_id;
RESET nile.auth_token;
-- Ending the membership ended Val's place in Blue; joining again starts with no teams.
SELECT count(*) AS val_team_rows FROM nile_auth.team_members WHERE user_id = :'val_id';
SELECT nile_auth.add_member(:'tara_co', 'val@teams.test') IS NOT NULL AS val_back;
SELECT count(*) AS val_team_rows_after_rejoin FROM nile_auth.team_members WHERE user_id = :'val_id';

-- Tara removes herself from Red and deletes Blue.
\c - nile_app
BEGIN;
SELECT nile_auth.set_context(:'tara', :'tara_co') IS NOT NULL AS tara_in;
SELECT nile_auth.remove_team_member(:'red_id', :'tara_id') AS tara_left_red;
SELECT nile_auth.delete_team(:'blue_id') AS blue_deleted;
SELECT string_agg(t->>'name', ', ' ORDER BY t->>'name') AS teams_left FROM nile_auth.list_teams() t;
COMMIT;
SELECT test_util.try('SELECT nile_auth.list_teams()') AS backend_without_tenant;

-- team_ids() in an application policy: "documents of my teams" (a restrictive policy, as
-- tenant isolation refuses permissive ones beside it).
\c - postgres
CREATE TABLE public.team_docs (team_id uuid NOT NULL, body text);
GRANT SELECT, INSERT ON public.team_docs TO clustify_web;
SELECT nile_auth.enable_tenant_isolation('public.team_docs');
CREATE POLICY my_teams ON public.team_docs AS RESTRICTIVE FOR SELECT
    USING (team_id = ANY ((SELECT nile_auth.team_ids())::uuid[]));
SELECT nile_auth.add_team_member(:'red_id', :'val_id') IS NOT NULL AS val_in_red;
INSERT INTO public.team_docs (tenant_id, team_id, body)
SELECT :'tara_co', id, name || ' plan' FROM nile_auth.teams WHERE tenant_id = :'tara_co';
\c - clustify_web
BEGIN;
SELECT nile_auth.set_context(:'val', :'tara_co') IS NOT NULL AS val_in;
SELECT body AS val_reads FROM public.team_docs ORDER BY body;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'tara', :'tara_co') IS NOT NULL AS tara_in;
SELECT count(*) AS tara_reads FROM public.team_docs;
COMMIT;
\c - postgres
DROP TABLE public.team_docs;
