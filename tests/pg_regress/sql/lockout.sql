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
SELECT failed_logins, locked_until > now() + interval '14 minutes' AS locked_for_15_minutes
  FROM nile_auth.credentials WHERE user_id = :'locky';
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
SELECT failed_logins, locked_until FROM nile_auth.credentials WHERE user_id = :'locky';
SELECT count(*) > 0 AS unknown_email_failures_recorded FROM nile_auth.audit_log
 WHERE event = 'login.failed' AND target IS NULL AND details->>'reason' = 'unknown_email';

-- A lock ends by itself after nile_auth.lockout_duration (here 1 second).
SET nile_auth.lockout_duration = 1;
SET nile_auth.max_failed_logins = 2;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 6')$$) AS fail_1;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 7')$$) AS fail_2;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'locky password 1')$$) AS locked_again;
SELECT pg_sleep(1.5);
SELECT nile_auth.login('locky@lock.test', 'locky password 1') ? 'token' AS logs_in_after_duration;
-- Failures further apart than nile_auth.lockout_window start a new count.
SET nile_auth.lockout_window = 1;
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 8')$$) AS fail_1;
SELECT pg_sleep(1.5);
SELECT test_util.try($$SELECT nile_auth.login('locky@lock.test', 'wrong password 9')$$) AS fail_after_window;
SELECT failed_logins, locked_until IS NULL OR locked_until < now() AS not_locked
  FROM nile_auth.credentials WHERE user_id = :'locky';
RESET ALL;
