-- Lockout: failed logins are counted although each failing login's transaction rolls back.
\c - nile_app
SELECT nile_auth.signup('locky@lock.test', 'locky password 1') IS NOT NULL AS signed_up;
SELECT id AS locky FROM nile_auth.users WHERE email = 'locky@lock.test' \gset
-- Five wrong passwords, each its own failing transaction, with a reconnect in between.
SELECT nile_auth.login('locky@lock.test', 'wrong password 1');
SELECT nile_auth.login('locky@lock.test', 'wrong password 2');
\c - nile_app
SELECT nile_auth.login('locky@lock.test', 'wrong password 3');
SELECT nile_auth.login('locky@lock.test', 'wrong password 4');
SELECT nile_auth.login('locky@lock.test', 'wrong password 5');
-- Now the right password fails exactly like a wrong one.
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'locky password 1')$$) AS right_password_while_locked;
\c - postgres
SELECT failures, locked_until > now() + interval '14 minutes' AS locked_for_15_minutes
  FROM nile_auth.login_failures WHERE account = :'locky';
SELECT event, details FROM nile_auth.audit_log WHERE target = :'locky' AND event <> 'user.signup' ORDER BY id;

-- Only the trusted backend unlocks; after that the password works and the count restarts.
\c - nile_app
SELECT test_util.try($$SELECT nile_auth.login('nobody@lock.test', 'any password')$$) AS unknown_email;
SELECT nile_auth.signup('other@lock.test', 'other password 1')->'token'->>'jwt' AS other \gset
SELECT nile_auth.authenticate(:'other') IS NOT NULL AS end_user;
SELECT test_util.try(format('SELECT nile_auth.unlock_account(%L)', :'locky')) AS end_user_unlocks;
SELECT test_util.try(format('SELECT nile_auth.lock_account(%L)', :'locky')) AS end_user_locks;
RESET nile.auth_token;
SELECT nile_auth.unlock_account(:'locky') AS unlocked;
SELECT nile_auth.login('locky@lock.test', 'locky password 1') ? 'token' AS logs_in;
\c - postgres
SELECT count(*) AS failure_rows_after_unlock FROM nile_auth.login_failures WHERE account = :'locky';
SELECT count(*) > 0 AS unknown_email_failures_recorded FROM nile_auth.audit_log
 WHERE event = 'login.failed' AND target IS NULL AND details->>'reason' = 'unknown_email';

-- A lock ends by itself after nile_auth.lockout_duration (here 1 second), once the window of
-- the failures that caused it has passed too (here 1 second as well).
SET nile_auth.lockout_duration = 1;
SET nile_auth.lockout_window = 1;
SET nile_auth.max_failed_logins = 2;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 6')$$) AS fail_1;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 7')$$) AS fail_2;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'locky password 1')$$) AS locked_again;
SELECT pg_sleep(1.5);
SELECT nile_auth.login('locky@lock.test', 'locky password 1') ? 'token' AS logs_in_after_duration;
-- A lock shorter than the window does not clear the count: once it ends, the account still
-- refuses until the window has passed (else each lock would grant two more guesses).
SET nile_auth.lockout_window = 3;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 10')$$) AS fail_1;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 11')$$) AS fail_2;
SELECT pg_sleep(1.5);
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'locky password 1')$$) AS lock_over_window_not;
SELECT pg_sleep(2);
SELECT nile_auth.login('locky@lock.test', 'locky password 1') ? 'token' AS logs_in_after_window;
SET nile_auth.lockout_window = 1;
-- Failures further apart than nile_auth.lockout_window start a new count.
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 8')$$) AS fail_1;
SELECT pg_sleep(1.5);
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 9')$$) AS fail_after_window;
SELECT failures, locked_until IS NULL OR locked_until < now() AS not_locked
  FROM nile_auth.login_failures WHERE account = :'locky';
RESET ALL;

-- Attack (issue 10, class 4a): guesses inside one REPEATABLE READ transaction, each failure
-- caught by an EXCEPTION block, the right password last. Against 0.1.0 every login read the
-- lock through the transaction's first snapshot, never saw it, and the last guess logged in.
-- The count is in shared memory now, outside any snapshot.
\c - nile_app
SELECT nile_auth.signup('rr@lock.test', 'rr right password') IS NOT NULL AS signed_up;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) >= 0 AS snapshot_taken FROM nile_auth.users;
DO $$
DECLARE
  guess text;
BEGIN
  FOREACH guess IN ARRAY ARRAY['guess 1', 'guess 2', 'guess 3', 'guess 4', 'guess 5', 'guess 6', 'rr right password'] LOOP
    BEGIN
      PERFORM nile_auth.login('rr@lock.test', guess);
      RAISE NOTICE '%: logged in', guess;
    EXCEPTION WHEN invalid_password THEN
      RAISE NOTICE '%: refused', guess;
    END;
  END LOOP;
END $$;
COMMIT;
\c - postgres
-- Five wrong passwords were checked against the hash; the sixth guess and the right password
-- were refused without a check.
SELECT details->>'reason' AS reason, count(*) FROM nile_auth.audit_log
 WHERE target = (SELECT id::text FROM nile_auth.users WHERE email = 'rr@lock.test') AND event <> 'user.signup'
 GROUP BY 1 ORDER BY 1;

-- Attack (class 4d): change_password(old, new) tested old passwords with no count at all. It
-- shares the login's count now: five wrong old passwords lock the account for both.
\c - nile_app
SELECT nile_auth.signup('cp@lock.test', 'cp right password')->'token'->>'jwt' AS cp_token \gset
SELECT nile_auth.authenticate(:'cp_token') IS NOT NULL AS signed_in;
SELECT n, test_util.try(format('SELECT nile_auth.change_password(%L, %L)', 'old guess ' || n, 'a new password'))
  FROM generate_series(1, 6) n;
SELECT test_util.try($$SELECT nile_auth.change_password('cp right password', 'a new password')$$) AS right_old_password_while_locked;
RESET nile.auth_token;
SELECT test_util.try($$SELECT nile_auth.login('cp@lock.test', 'cp right password')$$) AS login_while_locked;
\c - postgres
SELECT details->>'reason' AS reason, count(*) FROM nile_auth.audit_log
 WHERE target = (SELECT id::text FROM nile_auth.users WHERE email = 'cp@lock.test') AND event <> 'user.signup'
 GROUP BY 1 ORDER BY 1;
-- Unlocked, the old password still works: no guess changed it.
SELECT nile_auth.unlock_account(id) AS unlocked FROM nile_auth.users WHERE email = 'cp@lock.test';
SELECT nile_auth.login('cp@lock.test', 'cp right password') ? 'token' AS old_password_still_works;

-- Attack (class 9): table statistics, which every role can read, told an unknown email from a
-- wrong password (0.1.0 updated credentials for one and not the other). Both now make the same
-- reads and writes: a first failure for an address never tried before, of either kind.
\c - nile_app
SELECT nile_auth.signup('stats@lock.test', 'stats right password') IS NOT NULL AS signed_up;
CREATE TEMP TABLE seen (n int, relname name, ins bigint, upd bigint, del bigint, hot bigint, idx bigint, seq bigint);
CREATE FUNCTION pg_temp.look(n int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO seen SELECT n, relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd, idx_scan, seq_scan
    FROM pg_stat_all_tables WHERE schemaname = 'nile_auth'
$$;
SELECT pg_stat_force_next_flush();
SELECT pg_temp.look(0);
SELECT test_util.try($$SELECT nile_auth.login('nobody-at-all@lock.test', 'some password')$$) AS unknown_email;
SELECT pg_stat_force_next_flush();
SELECT pg_temp.look(1);
SELECT test_util.try($$SELECT nile_auth.login('stats@lock.test', 'some password')$$) AS wrong_password;
SELECT pg_stat_force_next_flush();
SELECT pg_temp.look(2);
-- The changes each attempt caused, table by table: no row means no difference.
SELECT a.relname, a.ins - z.ins AS ins_unknown, b.ins - a.ins AS ins_wrong, a.upd - z.upd AS upd_unknown, b.upd - a.upd AS upd_wrong,
       a.del - z.del AS del_unknown, b.del - a.del AS del_wrong, a.idx - z.idx AS idx_unknown, b.idx - a.idx AS idx_wrong,
       a.seq - z.seq AS seq_unknown, b.seq - a.seq AS seq_wrong
  FROM seen z JOIN seen a ON a.relname = z.relname AND a.n = 1 JOIN seen b ON b.relname = z.relname AND b.n = 2
 WHERE z.n = 0
   AND (a.ins - z.ins, a.upd - z.upd, a.del - z.del, a.hot - z.hot, coalesce(a.idx - z.idx, 0), a.seq - z.seq)
       IS DISTINCT FROM (b.ins - a.ins, b.upd - a.upd, b.del - a.del, b.hot - a.hot, coalesce(b.idx - a.idx, 0), b.seq - a.seq);
-- ... and the attempts did write something (the comparison above is not vacuous).
SELECT b.ins - a.ins AS audit_rows_per_attempt FROM seen a JOIN seen b USING (relname)
 WHERE relname = 'audit_log' AND a.n = 1 AND b.n = 2;
