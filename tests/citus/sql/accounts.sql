-- Sessions, API keys, invitations, teams, lockout and account deletion on Citus. Their writes go
-- to nile_auth's reference tables (so to every node); each node's checks and caches follow, and
-- `on_worker` reads Clustify rows, which live on the workers, with the context forwarded there.
\c - postgres
CREATE ROLE clustify_backend LOGIN IN ROLE nile_auth_backend;   -- the application's mailer
GRANT USAGE ON SCHEMA nile_auth TO clustify_backend;
-- Reads through one transaction's context: count of the tenant's clusters (on a worker), or the error.
CREATE FUNCTION public.on_worker(token text, tenant uuid) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nile_auth.set_context(token, tenant);
    RETURN (SELECT count(*) FROM clustify.clusters WHERE tenant_id = tenant)::text;
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE;
END $$;
-- On Citus the background workers' writes follow the failing call's transaction (it does not
-- wait for them): this waits up to 5 seconds for query q to be true.
CREATE FUNCTION public.wait_until(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE done boolean;
BEGIN
    FOR i IN 1..100 LOOP
        EXECUTE q INTO done;
        IF done THEN RETURN true; END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END $$;

\c - clustify_web
SELECT nile_auth.signup('ann@clustify.dev', 'ann password 1', 'Ann', 'Ann Co') AS signup \gset
SELECT :'signup'::jsonb->'token'->>'jwt' AS ann, :'signup'::jsonb->>'refreshToken' AS ann_refresh,
       :'signup'::jsonb->'tenants'->>0 AS ann_co \gset
BEGIN;
SELECT nile_auth.set_context(:'ann', :'ann_co') IS NOT NULL AS context;
INSERT INTO clustify.clusters (name) VALUES ('ann-1');
COMMIT;
SELECT on_worker(:'ann', :'ann_co') AS ann_reads;

-- Sessions: a refreshed token works on the workers; the spent one within the reuse interval
-- gets the same successor; logout ends the session on every node.
SELECT nile_auth.refresh(:'ann_refresh') AS r1 \gset
SELECT nile_auth.refresh(:'ann_refresh') AS r1_again \gset
SELECT :'r1'::jsonb->>'refreshToken' = :'r1_again'::jsonb->>'refreshToken' AS same_successor;
SELECT :'r1'::jsonb->'token'->>'jwt' AS ann2 \gset
SELECT on_worker(:'ann2', :'ann_co') AS refreshed_reads;
SELECT nile_auth.login('ann@clustify.dev', 'ann password 1')->'token'->>'jwt' AS ann3 \gset
BEGIN;
SELECT nile_auth.authenticate(:'ann2', true) IS NOT NULL AS ann_in;
SELECT nile_auth.logout('local') AS ended;
COMMIT;
SELECT on_worker(:'ann2', :'ann_co') AS logged_out_reads, on_worker(:'ann3', :'ann_co') AS other_session_reads;
SELECT try(format('SELECT nile_auth.refresh(%L)', :'r1'::jsonb->>'refreshToken')) AS refresh_after_logout;
-- A spent token presented after the interval ends the whole session (a background worker
-- writes the ending to the reference table).
\c - postgres
SET nile_auth.refresh_reuse_interval = 1;
SELECT nile_auth.login('ann@clustify.dev', 'ann password 1') AS s4 \gset
SELECT nile_auth.refresh(:'s4'::jsonb->>'refreshToken') AS r4 \gset
SELECT pg_sleep(1.5);
SELECT try(format('SELECT nile_auth.refresh(%L)', :'s4'::jsonb->>'refreshToken')) AS reused_late;
SELECT wait_until(format('SELECT ended IS NOT NULL FROM nile_auth.sessions WHERE id = %L', :'s4'::jsonb->>'sessionId')) AS ended;
SELECT count(DISTINCT result) AS nodes_agree, min(result) AS end_reason
  FROM run_command_on_all_nodes(format('SELECT end_reason FROM nile_auth.sessions WHERE id = %L', :'s4'::jsonb->>'sessionId'));
RESET nile_auth.refresh_reuse_interval;
\c - clustify_web
SELECT on_worker(:'r4'::jsonb->'token'->>'jwt', :'ann_co') AS reused_session_reads;

-- API keys: a key bound to Ann Co logs in; its token reads there on the workers and nowhere
-- else; revoking the key ends its sessions on every node.
BEGIN;
SELECT nile_auth.authenticate(:'ann3', true) IS NOT NULL AS ann_in;
SELECT nile_auth.create_api_key('ci', :'ann_co') AS key \gset
COMMIT;
SELECT nile_auth.login_with_api_key(:'key'::jsonb->>'key')->'token'->>'jwt' AS ci \gset
SELECT on_worker(:'ci', :'ann_co') AS key_reads;
BEGIN;
SELECT nile_auth.authenticate(:'ann3', true) IS NOT NULL AS ann_in;
SELECT nile_auth.create_tenant('Ann Side')->>'id' AS ann_side \gset
COMMIT;
SELECT on_worker(:'ci', :'ann_side') AS key_other_tenant;
BEGIN;
SELECT nile_auth.authenticate(:'ann3', true) IS NOT NULL AS ann_in;
SELECT nile_auth.revoke_api_key((:'key'::jsonb->>'id')::uuid) AS revoked;
COMMIT;
SELECT on_worker(:'ci', :'ann_co') AS revoked_key_reads;
SELECT try(format('SELECT nile_auth.login_with_api_key(%L)', :'key'::jsonb->>'key')) AS revoked_key_logs_in;

-- Invitations: Ann invites Bob through the mailer; Bob signs up with it and reads Ann Co's rows
-- on the workers.
\c - clustify_backend
BEGIN;
SELECT nile_auth.authenticate(:'ann3', true) IS NOT NULL AS ann_in;
SELECT nile_auth.invite('bob@clustify.dev', '{member}', :'ann_co')->>'token' AS invitation \gset
COMMIT;
\c - clustify_web
BEGIN;
SELECT nile_auth.authenticate(:'ann3', true) IS NOT NULL AS ann_in;
SELECT try(format('SELECT nile_auth.invite(%L, %L, %L)', 'eve@clustify.dev', '{member}', :'ann_co')) AS end_user_role_invites;
ROLLBACK;
SELECT nile_auth.signup('bob@clustify.dev', 'bob password 1', 'Bob', NULL, :'invitation') AS bob_signup \gset
SELECT :'bob_signup'::jsonb->'token'->>'jwt' AS bob, :'bob_signup'::jsonb->>'id' AS bob_id,
       :'bob_signup'::jsonb->'tenants'->>0 = :'ann_co' AS joined \gset
SELECT :'joined' AS joined, on_worker(:'bob', :'ann_co') AS bob_reads;
SELECT try(format('SELECT nile_auth.signup(%L, %L, NULL, NULL, %L)', 'eve@clustify.dev', 'eve password 1', :'invitation')) AS invitation_used_again;

-- Teams: Ann puts Bob in a team; removing Bob from Ann Co ends it, and every node refuses him.
BEGIN;
SELECT nile_auth.set_context(:'ann3', :'ann_co') IS NOT NULL AS context;
SELECT nile_auth.create_team('platform')->>'id' AS team \gset
SELECT jsonb_array_length(nile_auth.add_team_member(:'team', :'bob_id')->'members') AS team_size;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'bob', :'ann_co') IS NOT NULL AS context;
SELECT cardinality(nile_auth.team_ids()) AS bobs_teams;
COMMIT;
BEGIN;
SELECT nile_auth.set_context(:'ann3', :'ann_co') IS NOT NULL AS context;
SELECT nile_auth.unlink_user(:'bob_id') AS removed;
COMMIT;
SELECT on_worker(:'bob', :'ann_co') AS removed_bob_reads;
\c - postgres
SELECT count(DISTINCT result) AS nodes_agree, min(result) AS bobs_team_rows
  FROM run_command_on_all_nodes(format('SELECT count(*) FROM nile_auth.team_members WHERE user_id = %L', :'bob_id'));

-- Lockout: failures are counted on the coordinator and written (by a background worker) to
-- the reference table; a worker refuses to check passwords at all, so the count is one.
SET nile_auth.max_failed_logins = 2;
SELECT try($$SELECT nile_auth.login('bob@clustify.dev', 'wrong 1')$$) AS fail_1,
       try($$SELECT nile_auth.login('bob@clustify.dev', 'wrong 2')$$) AS fail_2,
       try($$SELECT nile_auth.login('bob@clustify.dev', 'bob password 1')$$) AS locked;
SELECT wait_until(format('SELECT failures = 2 FROM nile_auth.login_failures WHERE account = %L', :'bob_id')) AS recorded;
SELECT count(DISTINCT result) AS nodes_agree, min(result) AS failures
  FROM run_command_on_all_nodes(format('SELECT failures FROM nile_auth.login_failures WHERE account = %L', :'bob_id'));
RESET nile_auth.max_failed_logins;
\c - clustify_web
SELECT DISTINCT success, result FROM run_command_on_workers($$SELECT nile_auth.login('ann@clustify.dev', 'wrong')$$);

-- Deleting an account: Bob deletes his; his tokens stop on every node, his address is free.
SELECT try($$SELECT nile_auth.login('bob@clustify.dev', 'bob password 1')$$) AS still_locked;
\c - postgres
SELECT nile_auth.unlock_account(:'bob_id') AS unlocked;
\c - clustify_web
SELECT nile_auth.login('bob@clustify.dev', 'bob password 1')->'token'->>'jwt' AS bob \gset
BEGIN;
SELECT nile_auth.authenticate(:'bob', true) IS NOT NULL AS bob_in;
SELECT nile_auth.delete_user() AS deleted;
COMMIT;
SELECT try(format('SELECT nile_auth.authenticate(%L)', :'bob')) AS deleted_token,
       on_worker(:'bob', :'ann_co') AS deleted_reads;
SELECT nile_auth.signup('bob@clustify.dev', 'bob password 2', 'Bob again')->>'id' <> :'bob_id' AS address_free;
\c - postgres
SELECT count(DISTINCT result) AS nodes_agree, min(result) AS bob_left
  FROM run_command_on_all_nodes(format($$SELECT format('%%s/%%s/%%s', (SELECT email FROM nile_auth.users WHERE id = %L),
                                                         (SELECT count(*) FROM nile_auth.sessions WHERE user_id = %L),
                                                         (SELECT count(*) FROM nile_auth.credentials WHERE user_id = %L))$$,
                                       :'bob_id', :'bob_id', :'bob_id'));
