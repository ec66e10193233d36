//! Writes that must stand although the calling transaction is about to fail: a failed password
//! check, a refresh token presented again. PostgreSQL has no autonomous transactions, so a
//! short-lived dynamic background worker makes the write in its own transaction while the
//! caller waits for it to finish, then raises.

use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::pg_sys;
use std::time::Duration;

/// Starts the library's worker `function` with `extra` (at most 127 bytes) and waits until it
/// exits. A worker slot is retried for about a second; false when none freed up (the write was
/// not made).
///
/// On Citus it does not wait: Citus serialises writes to a reference table (and to those its
/// foreign keys join) with locks on every node, which the caller may hold from its own writes,
/// so the worker's write can only follow the caller's transaction, which is about to fail.
pub fn run(kind: &str, function: &str, extra: &str) -> bool {
    let wait = !crate::db::citus_installed();
    for _ in 0..50 {
        let started = BackgroundWorkerBuilder::new(kind)
            .set_type(kind)
            .set_library("nile_auth")
            .set_function(function)
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(None)
            .set_extra(extra)
            // SAFETY: set in every backend.
            .set_notify_pid(unsafe { pg_sys::MyProcPid })
            .load_dynamic();
        if let Ok(worker) = started {
            if wait {
                let _ = worker.wait_for_shutdown();
            }
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Inside a worker: connects to the job's database and runs `f` in one transaction with a
/// pinned `search_path` (workers run as the bootstrap superuser: nothing they run may resolve
/// through a path a database's users can write to) and a short lock_timeout (the failing
/// session may hold a row the worker needs, and it waits for the worker).
pub fn in_transaction(database: u32, f: impl FnOnce() + std::panic::UnwindSafe + std::panic::RefUnwindSafe) {
    use pgrx::bgworkers::BackgroundWorker;
    use pgrx::prelude::*;
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(database)), None);
    BackgroundWorker::transaction(|| {
        Spi::run("SET LOCAL search_path = pg_catalog, pg_temp").expect("pin search_path");
        Spi::run("SET LOCAL lock_timeout = '2s'").expect("set lock_timeout");
        // A database's own default must not cancel the write (the lock_timeout bounds the wait).
        Spi::run("SET LOCAL statement_timeout = 0").expect("set statement_timeout");
        f();
    });
}
