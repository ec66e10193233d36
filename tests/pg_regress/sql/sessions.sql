-- Sessions (issue 12): refresh-token rotation, a spent token presented again within and after
-- nile_auth.refresh_reuse_interval, logout scopes as a second backend sees them, listing and
-- revoking, what else ends a session, claims() and the role claim. As the end-user role.
\c - clustify_web
SELECT nile_auth.signup('sam@sessions.test', 'sam password 1', 'Sam') AS s1 \gset
SELECT :'s1'::jsonb->>'id' AS sam_id, :'s1'::jsonb->>'refreshToken' AS r1, :'s1'::jsonb->>'sessionId' AS sid1 \gset
SELECT :'r1' LIKE 'nrt\_%' AS recognisable, length(:'r1') AS refresh_length,
       test_util.jwt_part(:'s1'::jsonb->'token'->>'jwt', 2)->>'sid' = :'sid1' AS access_token_names_session;

-- refresh: a new access token and refresh token for the same session; the old one is spent.
SELECT nile_auth.refresh(:'r1') AS f1 \gset
SELECT :'f1'::jsonb->>'refreshToken' AS r2 \gset
SELECT array(SELECT jsonb_object_keys(:'f1'::jsonb) ORDER BY 1) AS keys,
       :'r2' <> :'r1' AS rotated, :'f1'::jsonb->>'sessionId' = :'sid1' AS same_session,
       :'f1'::jsonb->>'id' = :'sam_id' AS same_user,
       test_util.jwt_part(:'f1'::jsonb->'token'->>'jwt', 2)->>'sid' = :'sid1' AS new_token_same_sid,
       nile_auth.authenticate(:'f1'::jsonb->'token'->>'jwt') = :'sam_id' AS new_token_verifies;
RESET nile.auth_token;
-- Within the interval a spent token returns the same successor (two tabs, a server render)...
SELECT nile_auth.refresh(:'r1')->>'refreshToken' = :'r2' AS same_successor;
-- ...or, when that successor was refreshed in turn, the live token at the end of the chain.
SELECT nile_auth.refresh(:'r2')->>'refreshToken' AS r3 \gset
SELECT nile_auth.refresh(:'r1')->>'refreshToken' = :'r3' AS chain_followed_to_live_token;
SELECT test_util.try($$SELECT nile_auth.refresh('nrt_not-a-token')$$) AS unknown_token,
       test_util.try('SELECT nile_auth.refresh(NULL)') AS null_token,
       test_util.try(format('SELECT nile_auth.refresh(%L)', :'s1'::jsonb->'token'->>'jwt')) AS access_token_is_no_refresh_token;
-- Application roles see no session or refresh token; only hashes are stored.
SELECT test_util.try('SELECT * FROM nile_auth.sessions') AS read_sessions,
       test_util.try('SELECT * FROM nile_auth.refresh_tokens') AS read_refresh_tokens;
\c - postgres
SELECT count(*) AS stored_in_clear FROM nile_auth.refresh_tokens
 WHERE token_hash IN (convert_to(:'r1', 'UTF8'), convert_to(:'r3', 'UTF8'));
SELECT count(*) AS stored_hashed FROM nile_auth.refresh_tokens WHERE token_hash = sha256(convert_to(:'r3', 'UTF8'));

-- After the interval, a spent token is taken as stolen: the whole session ends, although the
-- call fails (a background worker commits the ending), with an audit entry.
SET nile_auth.refresh_reuse_interval = 1;
SELECT nile_auth.refresh(:'r3') AS f4 \gset
SELECT pg_sleep(1.5);
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'r3')) AS reused_late;
SELECT ended IS NOT NULL AS ended, end_reason FROM nile_auth.sessions WHERE id = :'sid1';
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'f4'::jsonb->>'refreshToken')) AS live_token_of_ended_session,
       test_util.try(format('SELECT nile_auth.authenticate(%L)', :'f4'::jsonb->'token'->>'jwt')) AS access_token_of_ended_session;
SELECT event, actor IS NULL AS no_actor, target = :'sam_id' AS target_is_user, details->>'sessionId' = :'sid1' AS names_session
  FROM nile_auth.audit_log WHERE event = 'session.refresh_token_reused' AND target = :'sam_id';
RESET nile_auth.refresh_reuse_interval;

-- Four more sessions; list_sessions marks the one in use.
\c - clustify_web
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS b \gset
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS c \gset
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS d \gset
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS e \gset
SELECT nile_auth.authenticate(:'c'::jsonb->'token'->>'jwt') IS NOT NULL AS signed_in_as_c;
SELECT count(*) AS live_sessions, count(*) FILTER (WHERE (s->>'current')::boolean) AS current,
       bool_and(s->>'id' = :'c'::jsonb->>'sessionId') FILTER (WHERE (s->>'current')::boolean) AS current_is_c,
       bool_and((s->>'expires')::timestamptz > now() + interval '6 days') AS expire_in_7_days_idle,
       array(SELECT jsonb_object_keys(min(s::text)::jsonb) ORDER BY 1) AS keys
  FROM nile_auth.list_sessions() s;

-- A second backend (dblink, as the end-user role) signed in with session b; logout('local') from
-- b here ends it there at its next transaction. (This side is postgres only because dblink needs
-- a superuser to connect without a password; with a token, it acts as Sam.)
\c - postgres
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=clustify_web',
                      current_setting('unix_socket_directories'), current_setting('port'), current_database()));
SELECT id = :'sam_id' AS b_elsewhere FROM dblink('other', format('SELECT nile_auth.authenticate(%L)::text', :'b'::jsonb->'token'->>'jwt')) AS t(id text);
SELECT nile_auth.authenticate(:'b'::jsonb->'token'->>'jwt') IS NOT NULL AS b_here;
SELECT test_util.try($$SELECT nile_auth.logout('everywhere')$$) AS bad_scope;
SELECT nile_auth.logout() AS ended_local;
SELECT id IS NULL AS b_gone_elsewhere FROM dblink('other', 'SELECT nile_auth.user_id()::text') AS t(id text);
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'b'::jsonb->>'refreshToken')) AS b_refresh_after_logout;
-- 'others' from c: d and e end, c stays.
SELECT id = :'sam_id' AS d_elsewhere FROM dblink('other', format('SELECT nile_auth.authenticate(%L)::text', :'d'::jsonb->'token'->>'jwt')) AS t(id text);
SELECT nile_auth.authenticate(:'c'::jsonb->'token'->>'jwt') IS NOT NULL AS c_here;
SELECT nile_auth.logout('others') AS ended_others;
SELECT id IS NULL AS d_gone_elsewhere FROM dblink('other', 'SELECT nile_auth.user_id()::text') AS t(id text);
SELECT nile_auth.user_id() = :'sam_id' AS c_still_signed_in;
SELECT count(*) AS live_sessions_after_others FROM nile_auth.list_sessions();
-- 'global' from c, while the other backend holds c too.
SELECT id = :'sam_id' AS c_elsewhere FROM dblink('other', format('SELECT nile_auth.authenticate(%L)::text', :'c'::jsonb->'token'->>'jwt')) AS t(id text);
SELECT nile_auth.logout('global') AS ended_global;
SELECT id IS NULL AS c_gone_elsewhere FROM dblink('other', 'SELECT nile_auth.user_id()::text') AS t(id text);
SELECT nile_auth.user_id() IS NULL AS c_gone_here;
SELECT dblink_disconnect('other');
RESET nile.auth_token;
SELECT test_util.try('SELECT nile_auth.logout()') AS logout_without_token;
SELECT event, details FROM nile_auth.audit_log WHERE event = 'session.logout' AND actor = :'sam_id' ORDER BY at;

-- revoke_session: users their own sessions, the trusted backend anyone's.
\c - clustify_web
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS g \gset
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS h \gset
SELECT nile_auth.signup('tia@sessions.test', 'tia password 1')->'token'->>'jwt' AS tia \gset
SELECT nile_auth.authenticate(:'tia') IS NOT NULL AS tia_in;
SELECT test_util.try(format('SELECT nile_auth.revoke_session(%L)', :'g'::jsonb->>'sessionId')) AS revoke_someone_elses;
SELECT nile_auth.authenticate(:'g'::jsonb->'token'->>'jwt') IS NOT NULL AS sam_in;
SELECT nile_auth.revoke_session((:'h'::jsonb->>'sessionId')::uuid) AS revoked_own,
       nile_auth.revoke_session((:'h'::jsonb->>'sessionId')::uuid) AS revoked_again;
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'h'::jsonb->>'refreshToken')) AS revoked_session_refresh;
\c - nile_app
SELECT nile_auth.revoke_session((:'g'::jsonb->>'sessionId')::uuid) AS backend_revokes_any;
SELECT test_util.try(format('SELECT nile_auth.revoke_session(%L)', gen_random_uuid())) AS unknown_session;

-- A password change ends every session and opens a new one; so does a reset. Deactivation ends them.
\c - clustify_web
SELECT nile_auth.login('sam@sessions.test', 'sam password 1') AS i \gset
SELECT nile_auth.authenticate(:'i'::jsonb->'token'->>'jwt') IS NOT NULL AS sam_in;
SELECT nile_auth.change_password('sam password 1', 'sam password 2') AS j \gset
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'i'::jsonb->>'refreshToken')) AS refresh_after_password_change,
       :'j'::jsonb->>'sessionId' <> :'i'::jsonb->>'sessionId' AS new_session;
SELECT nile_auth.refresh(:'j'::jsonb->>'refreshToken')->>'id' = :'sam_id' AS new_session_refreshes;
\c - nile_app
SELECT nile_auth.login('sam@sessions.test', 'sam password 2')->>'refreshToken' AS k \gset
SELECT nile_auth.lock_account(:'sam_id') AS locked;
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'k')) AS refresh_while_locked;
SELECT nile_auth.unlock_account(:'sam_id') AS unlocked;
SELECT nile_auth.refresh(:'k')->>'refreshToken' AS k2 \gset
SELECT nile_auth.deactivate_user(:'sam_id') AS deactivated;
SELECT nile_auth.activate_user(:'sam_id') AS activated;
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'k2')) AS refresh_after_deactivation;
\c - postgres
SELECT end_reason, count(*) FROM nile_auth.sessions WHERE user_id = :'sam_id' GROUP BY 1 ORDER BY 1;

-- Sessions from an API key: limited to its tenant, renewable, ended when the key is revoked.
\c - clustify_web
SELECT nile_auth.login('sam@sessions.test', 'sam password 2')->'token'->>'jwt' AS sam \gset
SELECT nile_auth.authenticate(:'sam') IS NOT NULL AS sam_in;
SELECT nile_auth.create_tenant('sam co')->>'id' AS samco \gset
SELECT nile_auth.create_api_key('bot', :'samco') AS key \gset
RESET nile.auth_token;
SELECT nile_auth.login_with_api_key(:'key'::jsonb->>'key') AS bot \gset
SELECT array(SELECT jsonb_object_keys(:'bot'::jsonb) ORDER BY 1) AS keys;
SELECT nile_auth.refresh(:'bot'::jsonb->>'refreshToken') AS bot2 \gset
SELECT test_util.jwt_part(:'bot2'::jsonb->'token'->>'jwt', 2)->>'tid' = :'samco' AS renewed_token_keeps_tenant;
SELECT nile_auth.authenticate(:'bot2'::jsonb->'token'->>'jwt') IS NOT NULL AS bot_in;
SELECT test_util.try($$SELECT nile_auth.logout('global')$$) AS tenant_token_cannot_end_account;
SELECT count(*) AS bot_sees_its_tenants_sessions FROM nile_auth.list_sessions();
SELECT nile_auth.authenticate(:'sam') IS NOT NULL AS sam_in;
SELECT nile_auth.revoke_api_key((:'key'::jsonb->>'id')::uuid) AS key_revoked;
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'bot2'::jsonb->>'refreshToken')) AS refresh_after_key_revoked,
       test_util.try(format('SELECT nile_auth.authenticate(%L)', :'bot2'::jsonb->'token'->>'jwt')) AS token_after_key_revoked;

-- claims(): the verified token's claims for policies, NULL with none or a bad one.
SELECT (SELECT nile_auth.claims()) ->> 'sub' = :'sam_id' AS claims_sub,
       array(SELECT jsonb_object_keys(nile_auth.claims()) ORDER BY 1) AS claim_names;
RESET nile.auth_token;
SELECT nile_auth.claims() IS NULL AS no_token_no_claims;
SET nile.auth_token = 'garbage';
SELECT nile_auth.claims() IS NULL AS bad_token_no_claims;
RESET nile.auth_token;

-- Session lifetimes: an access token never outlives its session; an idle session ends.
SELECT test_util.try('SET nile_auth.session_max_age = 100000') AS app_cannot_set_lifetimes,
       test_util.try($$SET nile_auth.token_role_claim = 'postgres'$$) AS app_cannot_set_role_claim;
\c - postgres
SET nile_auth.session_max_age = 120;
SELECT (nile_auth.login('sam@sessions.test', 'sam password 2')->'token'->>'maxAge')::int BETWEEN 100 AND 120 AS capped_by_session;
SET nile_auth.session_idle_timeout = 1;
SELECT nile_auth.login('sam@sessions.test', 'sam password 2')->>'refreshToken' AS idle \gset
SELECT pg_sleep(1.5);
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'idle')) AS refresh_after_idle_timeout;
RESET nile_auth.session_max_age;
RESET nile_auth.session_idle_timeout;
-- The role claim, for PostgREST.
SET nile_auth.token_role_claim = 'clustify_web';
SELECT test_util.jwt_part(nile_auth.login('sam@sessions.test', 'sam password 2')->'token'->>'jwt', 2)->>'role' AS role_claim;
RESET nile_auth.token_role_claim;
SELECT test_util.jwt_part(nile_auth.login('sam@sessions.test', 'sam password 2')->'token'->>'jwt', 2) ? 'role' AS role_claim_by_default;

-- Attacks a review found against the first version; each succeeded then.
\c - postgres
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
                      current_setting('unix_socket_directories'), current_setting('port'), current_database()));
-- 1. A transaction's start time is the caller's choice: one opened long ago took a token spent
--    since then as "within the interval", and got the live token of someone else's session.
SELECT nile_auth.login('sam@sessions.test', 'sam password 2') AS victim \gset
SELECT refresh->>'refreshToken' AS victim_next
  FROM dblink('other', format('SELECT nile_auth.refresh(%L)', :'victim'::jsonb->>'refreshToken')) AS t(refresh jsonb) \gset
BEGIN;
SET LOCAL nile_auth.refresh_reuse_interval = 1;
SELECT 1 AS transaction_started;
SELECT refresh->>'id' = :'sam_id' AS victim_refreshed_again
  FROM dblink('other', format('SELECT nile_auth.refresh(%L)', :'victim_next')) AS t(refresh jsonb);
SELECT pg_sleep(1.5);
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'victim'::jsonb->>'refreshToken')) AS old_transaction_reuse;
COMMIT;
SELECT end_reason FROM nile_auth.sessions WHERE id = (:'victim'::jsonb->>'sessionId')::uuid;
-- 2. A refresh left open held the session row, so the worker that ends a session on reuse timed
--    out: the thief kept the session. Refreshes no longer write the session row.
SELECT nile_auth.login('sam@sessions.test', 'sam password 2') AS stolen \gset
SELECT refresh->>'refreshToken' AS thief_next
  FROM dblink('other', format('SELECT nile_auth.refresh(%L)', :'stolen'::jsonb->>'refreshToken')) AS t(refresh jsonb) \gset
SELECT dblink_exec('other', 'BEGIN');
SELECT refresh->>'id' = :'sam_id' AS thief_refresh_held_open
  FROM dblink('other', format('SELECT nile_auth.refresh(%L)', :'thief_next')) AS t(refresh jsonb);
SET nile_auth.refresh_reuse_interval = 1;
SELECT pg_sleep(1.5);
SELECT test_util.try(format('SELECT nile_auth.refresh(%L)', :'stolen'::jsonb->>'refreshToken')) AS owner_presents_spent_token;
RESET nile_auth.refresh_reuse_interval;
SELECT end_reason FROM nile_auth.sessions WHERE id = (:'stolen'::jsonb->>'sessionId')::uuid;
SELECT dblink_exec('other', 'COMMIT');
-- 3. A login through a snapshot older than a password change used the old password and got a
--    session that outlived the change.
SELECT nile_auth.login('sam@sessions.test', 'sam password 2')->'token'->>'jwt' AS sam2 \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) > 0 AS snapshot_taken FROM nile_auth.users;
SELECT id = :'sam_id' AS sam_elsewhere FROM dblink('other', format('SELECT nile_auth.authenticate(%L)::text', :'sam2')) t(id text);
SELECT changed->>'id' = :'sam_id' AS password_changed_elsewhere
  FROM dblink('other', $$SELECT nile_auth.change_password('sam password 2', 'sam password 3')$$) t(changed jsonb);
SELECT test_util.try($$SELECT nile_auth.login('sam@sessions.test', 'sam password 2')$$) AS login_with_changed_password;
ROLLBACK;
-- 4. Verifying through a REPEATABLE READ snapshot taken before a logout, after the backend had
--    seen the logout's invalidation, cached the token as valid for later transactions too.
--    Verification now reads the latest committed state (src/probe.rs): refused at once.
SELECT nile_auth.login('sam@sessions.test', 'sam password 3') AS rr \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) > 0 AS snapshot_taken FROM nile_auth.users;
SELECT id = :'sam_id' AS rr_elsewhere FROM dblink('other', format('SELECT nile_auth.authenticate(%L)::text', :'rr'::jsonb->'token'->>'jwt')) t(id text);
SELECT ended AS logged_out_elsewhere FROM dblink('other', 'SELECT nile_auth.logout()') t(ended bigint);
LOCK TABLE test_util.tokens IN ACCESS SHARE MODE;  -- any lock reads the invalidation queue
SELECT test_util.try(format('SELECT nile_auth.authenticate(%L)', :'rr'::jsonb->'token'->>'jwt')) AS in_the_old_snapshot;
COMMIT;
SELECT nile_auth.user_id() IS NULL AS logged_out_after_commit;
RESET nile.auth_token;
SELECT dblink_exec('other', 'RESET nile.auth_token');
SELECT dblink_disconnect('other');
