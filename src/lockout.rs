//! Failed-login accounting that survives the failing login's rollback.
//!
//! A failed login raises 28P01, which aborts its transaction, so anything it wrote there would be
//! lost. The failure is recorded instead by a short-lived dynamic background worker, in its own
//! transaction; the login waits for it to commit, then raises. Dynamic workers need no
//! `shared_preload_libraries`. The worker counts failures in nile_auth.credentials, locks the
//! account when they reach nile_auth.max_failed_logins within nile_auth.lockout_window, and
//! writes the audit entries.

use crate::settings::{LOCKOUT_DURATION, LOCKOUT_WINDOW, MAX_FAILED_LOGINS};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    UnknownEmail,
    WrongPassword,
    Locked,
    Deactivated,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::UnknownEmail => "unknown_email",
            Failure::WrongPassword => "wrong_password",
            Failure::Locked => "locked",
            Failure::Deactivated => "deactivated",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Failure::UnknownEmail, Failure::WrongPassword, Failure::Locked, Failure::Deactivated]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// What the worker is told, through bgw_extra (128 bytes). The settings travel with it so the
/// values in force in the failing session apply.
#[derive(Debug, PartialEq, Eq)]
struct Job {
    database: u32,
    user: Option<Uuid>,
    failure: Failure,
    max_failed: i32,
    window_s: i32,
    duration_s: i32,
}

impl Job {
    fn encode(&self) -> String {
        let user = self.user.map_or_else(|| "-".to_owned(), |u| u.to_string());
        format!("{} {} {} {} {} {}", self.database, user, self.failure.as_str(), self.max_failed, self.window_s, self.duration_s)
    }

    fn decode(s: &str) -> Option<Self> {
        let mut p = s.split(' ');
        let database = p.next()?.parse().ok()?;
        let user = match p.next()? {
            "-" => None,
            u => Some(Uuid::parse_str(u).ok()?),
        };
        let failure = Failure::parse(p.next()?)?;
        let (max_failed, window_s, duration_s) = (p.next()?.parse().ok()?, p.next()?.parse().ok()?, p.next()?.parse().ok()?);
        Some(Job { database, user, failure, max_failed, window_s, duration_s })
    }
}

/// Records a failed login and waits until it is committed. A worker slot is retried for about a
/// second; if none frees up the failure goes unrecorded with a WARNING (the login still fails).
pub fn record_failed_login(user: Option<Uuid>, failure: Failure) {
    let job = Job {
        // SAFETY: MyDatabaseId and MyProcPid are set in every backend that runs SQL.
        database: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        user,
        failure,
        max_failed: MAX_FAILED_LOGINS.get(),
        window_s: LOCKOUT_WINDOW.get(),
        duration_s: LOCKOUT_DURATION.get(),
    };
    let extra = job.encode();
    for _ in 0..50 {
        let started = BackgroundWorkerBuilder::new("nile_auth failed login")
            .set_type("nile_auth failed login")
            .set_library("nile_auth")
            .set_function("nile_auth_failed_login_worker")
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(None)
            .set_extra(&extra)
            .set_notify_pid(unsafe { pg_sys::MyProcPid })
            .load_dynamic();
        if let Ok(worker) = started {
            let _ = worker.wait_for_shutdown();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pgrx::warning!("nile_auth: no background worker slot to record a failed login (raise max_worker_processes)");
}

/// The worker's entry point (named in the worker registration above).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn nile_auth_failed_login_worker(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let Some(job) = Job::decode(BackgroundWorker::get_extra()) else {
        pgrx::warning!("nile_auth failed-login worker: unreadable job");
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(job.database)), None);
    BackgroundWorker::transaction(|| {
        // The failing session may itself hold the credentials row (a login after a password
        // change in one transaction); it waits for us, so never wait on it for long.
        Spi::run("SET LOCAL lock_timeout = '2s'").ok();
        apply(&job);
    });
}

fn apply(job: &Job) {
    let target = job.user.map(|u| u.to_string());
    let write = |q: &str, args: &[pgrx::datum::DatumWithOid]| Spi::run_with_args(q, args).ok();
    write(
        "INSERT INTO nile_auth.audit_log (event, target, details) VALUES ('login.failed', $1, $2)",
        &[target.as_deref().into(), JsonB(json!({"reason": job.failure.as_str()})).into()],
    );
    let (Some(user), Failure::WrongPassword) = (job.user, job.failure) else { return };
    let failures = Spi::get_one_with_args::<i32>(
        "UPDATE nile_auth.credentials
            SET failed_logins = CASE WHEN last_failed_login > now() - make_interval(secs => $2)
                                     THEN failed_logins + 1 ELSE 1 END,
                last_failed_login = now()
          WHERE user_id = $1
         RETURNING failed_logins",
        &[pgrx::Uuid::from_bytes(*user.as_bytes()).into(), f64::from(job.window_s).into()],
    )
    .ok()
    .flatten()
    .unwrap_or(0);
    if failures >= job.max_failed {
        write(
            "UPDATE nile_auth.credentials SET locked_until = now() + make_interval(secs => $2)
              WHERE user_id = $1 AND (locked_until IS NULL OR locked_until < now())",
            &[pgrx::Uuid::from_bytes(*user.as_bytes()).into(), f64::from(job.duration_s).into()],
        );
        write(
            "INSERT INTO nile_auth.audit_log (event, target, details) VALUES ('account.locked', $1, $2)",
            &[target.as_deref().into(), JsonB(json!({"failedLogins": failures})).into()],
        );
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn job_round_trips_within_bgw_extra() {
        let job = Job {
            database: 4_294_967_295,
            user: Some(Uuid::now_v7()),
            failure: Failure::WrongPassword,
            max_failed: 1000,
            window_s: 604_800,
            duration_s: 31_536_000,
        };
        let encoded = job.encode();
        assert!(encoded.len() < 128, "{}", encoded.len());
        assert_eq!(Job::decode(&encoded), Some(job));
        let anonymous = Job { database: 5, user: None, failure: Failure::UnknownEmail, max_failed: 5, window_s: 900, duration_s: 900 };
        assert_eq!(Job::decode(&anonymous.encode()), Some(anonymous));
        assert_eq!(Job::decode("garbage"), None);
    }
}
