//! Writes a failed password check down although the failing call's transaction rolls back.
//!
//! A background worker does it in its own transaction (`detached`); the caller waits for the
//! commit, then raises. The count itself is already in shared memory (see `slots`): this is
//! what survives a restart and what the audit log shows. Every kind of failure makes the same
//! writes (one upsert into nile_auth.login_failures, one audit row, the same clean-up), so table
//! statistics do not tell an unknown email from a wrong password.

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    UnknownEmail,
    WrongPassword,
    Locked,
    Deactivated,
    /// No lockout slot was free, so the password was not checked.
    Uncounted,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::UnknownEmail => "unknown_email",
            Failure::WrongPassword => "wrong_password",
            Failure::Locked => "locked",
            Failure::Deactivated => "deactivated",
            Failure::Uncounted => "lockout_full",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Failure::UnknownEmail, Failure::WrongPassword, Failure::Locked, Failure::Deactivated, Failure::Uncounted]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// What the worker is told, through bgw_extra (128 bytes).
#[derive(Debug, PartialEq, Eq)]
pub struct Job {
    pub database: u32,
    /// The user's id, or the key derived from an unregistered email.
    pub account: Uuid,
    pub registered: bool,
    pub failure: Failure,
    pub failures: i32,
    /// Unix milliseconds, 0 for none.
    pub locked_until_ms: i64,
    /// This failure locked the account.
    pub locked_now: bool,
    /// nile_auth.lockout_window of the failing session: rows older than that are cleaned up.
    pub window_s: i32,
}

impl Job {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {}",
            self.database,
            self.account,
            u8::from(self.registered),
            self.failure.as_str(),
            self.failures,
            self.locked_until_ms,
            u8::from(self.locked_now),
            self.window_s
        )
    }

    fn decode(s: &str) -> Option<Self> {
        let mut p = s.split(' ');
        let database = p.next()?.parse().ok()?;
        let account = Uuid::parse_str(p.next()?).ok()?;
        let registered = p.next()? == "1";
        let failure = Failure::parse(p.next()?)?;
        let failures = p.next()?.parse().ok()?;
        let locked_until_ms = p.next()?.parse().ok()?;
        let locked_now = p.next()? == "1";
        let window_s = p.next()?.parse().ok()?;
        Some(Job { database, account, registered, failure, failures, locked_until_ms, locked_now, window_s })
    }
}

/// Records a failure and waits until it is committed. If no worker slot frees up the failure
/// is not written (it is counted in shared memory all the same, until a restart) and a WARNING
/// says so.
pub fn record(job: &Job) {
    if !crate::detached::run("nile_auth failed login", "nile_auth_failed_login_worker", &job.encode()) {
        pgrx::warning!("nile_auth: no background worker slot to write a failed login down (raise max_worker_processes)");
    }
}

/// The worker's entry point (named in `record`).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn nile_auth_failed_login_worker(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let Some(job) = Job::decode(BackgroundWorker::get_extra()) else {
        pgrx::warning!("nile_auth failed-login worker: unreadable job");
        return;
    };
    // The failing session may itself hold the account's login_failures row (a right password,
    // which deletes it, then a wrong one in one transaction); lock_timeout keeps that short.
    crate::detached::in_transaction(job.database, || apply(&job));
}

fn apply(job: &Job) {
    let account = pgrx::Uuid::from_bytes(*job.account.as_bytes());
    let target = job.registered.then(|| job.account.to_string());
    // Unix seconds, NULL for no lock (to_timestamp is strict).
    let locked_until = (job.locked_until_ms > 0).then(|| job.locked_until_ms as f64 / 1000.0);
    let write = |q: &str, args: &[pgrx::datum::DatumWithOid]| Spi::run_with_args(q, args).ok();
    // SAFETY: the transaction's start, as now() reads it.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let window_start = crate::db::timestamptz(now - i64::from(job.window_s) * 1_000_000);
    // Workers may commit out of order: the stored count and lock only move forward within the
    // window. A refusal that counts nothing passes 0 and leaves them as they are; it still
    // writes the row, so every kind of failure makes the same writes.
    write(
        "INSERT INTO nile_auth.login_failures AS f (account, failures, last_failure, locked_until)
         VALUES ($1, $2, pg_catalog.now(), pg_catalog.to_timestamp($3))
         ON CONFLICT (account) DO UPDATE
            -- The window's start as a value ($4): Citus allows no function in DO UPDATE SET.
            SET failures = CASE WHEN f.last_failure < $4
                                THEN excluded.failures
                                ELSE GREATEST(f.failures, excluded.failures) END,
                last_failure = excluded.last_failure,
                locked_until = GREATEST(f.locked_until, excluded.locked_until)",
        &[account.into(), job.failures.into(), locked_until.into(), window_start.into()],
    );
    // One audit row per failure, whatever happened: the lock is a detail of the failure that
    // caused it.
    let (event, details) = if job.locked_now {
        ("account.locked", json!({"reason": job.failure.as_str(), "failedLogins": job.failures}))
    } else {
        ("login.failed", json!({"reason": job.failure.as_str()}))
    };
    write(
        "INSERT INTO nile_auth.audit_log (event, target, details) VALUES ($1, $2, $3)",
        &[event.into(), target.as_deref().into(), JsonB(details).into()],
    );
    // Keep the table small: drop a couple of rows that no longer count for anything, skipping
    // rows another transaction holds (waiting on them would stall every failure).
    write(
        "DELETE FROM nile_auth.login_failures
          WHERE account IN (SELECT account FROM nile_auth.login_failures
                             WHERE last_failure < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
                               AND (locked_until IS NULL OR locked_until < pg_catalog.now()) AND account <> $2
                             LIMIT 2 FOR UPDATE SKIP LOCKED)",
        &[f64::from(job.window_s).into(), account.into()],
    );
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn job_round_trips_within_bgw_extra() {
        let job = Job {
            database: 4_294_967_295,
            account: Uuid::now_v7(),
            registered: true,
            failure: Failure::WrongPassword,
            failures: 1000,
            locked_until_ms: 32_503_680_000_000,
            locked_now: true,
            window_s: 604_800,
        };
        let encoded = job.encode();
        assert!(encoded.len() < 128, "{}", encoded.len());
        assert_eq!(Job::decode(&encoded), Some(job));
        let unknown = Job {
            database: 5,
            account: Uuid::nil(),
            registered: false,
            failure: Failure::UnknownEmail,
            failures: 1,
            locked_until_ms: 0,
            locked_now: false,
            window_s: 900,
        };
        assert_eq!(Job::decode(&unknown.encode()), Some(unknown));
        assert_eq!(Job::decode("garbage"), None);
    }
}
