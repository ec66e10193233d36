//! Lockout: per account and window, at most `nile_auth.max_failed_logins` wrong passwords are
//! ever checked against the hash, whatever the isolation level, the concurrency, the free worker
//! slots or the entry point (login, change_password: everything that checks a password goes
//! through `check_password`).
//!
//! The count lives in shared memory (`slots`), where every backend sees every attempt at once;
//! an attempt reserves its place there before the hash is checked. The failed attempt's own
//! transaction rolls back, so a worker (`worker`) writes the failure to
//! nile_auth.login_failures and the audit log, from where a restart picks the count up again.
//! Shared memory needs `shared_preload_libraries = 'nile_auth'`; without it every password
//! check is refused (55000), never left uncounted.

mod slots;
mod worker;

use crate::db::{read_row_prepared, to_pg, write};
use crate::errors::AuthError;
use crate::passwords;
use crate::settings::{LOCKOUT_DURATION, LOCKOUT_WINDOW, MAX_FAILED_LOGINS};
use pgrx::pg_sys;
use pgrx::prelude::*;
use slots::{Count, Persisted, Policy, Refusal, Table};
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;
pub use worker::Failure;

/// The table and its lock, in shared memory.
#[repr(C)]
struct Shared {
    lock: *mut pg_sys::LWLock,
    table: Table,
}

const SHMEM_NAME: &CStr = c"nile_auth_lockout";
static PRELOADED: AtomicBool = AtomicBool::new(false);
// Set once: in the postmaster's hooks below (inherited by every forked backend).
static mut SHARED: *mut Shared = std::ptr::null_mut();
static mut PREV_SHMEM_REQUEST: Option<unsafe extern "C-unwind" fn()> = None;
static mut PREV_SHMEM_STARTUP: Option<unsafe extern "C-unwind" fn()> = None;

/// From `_PG_init`: asks for the shared table when the library is preloaded.
pub fn init() {
    // SAFETY: postmaster globals, set while shared_preload_libraries load (single-threaded).
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        PREV_SHMEM_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(shmem_request);
        PREV_SHMEM_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
    }
    PRELOADED.store(true, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: called once by the postmaster, in the request phase.
    unsafe {
        if let Some(previous) = PREV_SHMEM_REQUEST {
            previous();
        }
        pg_sys::RequestAddinShmemSpace(size_of::<Shared>());
        pg_sys::RequestNamedLWLockTranche(SHMEM_NAME.as_ptr(), 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: the documented pattern: AddinShmemInitLock (main LWLock 21) around
    // ShmemInitStruct; the first caller zeroes the table (all-zero is empty).
    unsafe {
        if let Some(previous) = PREV_SHMEM_STARTUP {
            previous();
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let shared = pg_sys::ShmemInitStruct(SHMEM_NAME.as_ptr(), size_of::<Shared>(), &mut found).cast::<Shared>();
        if !found {
            std::ptr::write_bytes(shared, 0, 1);
            (*shared).lock = &raw mut (*pg_sys::GetNamedLWLockTranche(SHMEM_NAME.as_ptr())).lock;
        }
        SHARED = shared;
        pg_sys::LWLockRelease(init_lock);
    }
}

/// Runs `f` on the table under its lock. `f` is plain Rust that cannot raise; an ERROR would
/// release the lock anyway (LWLockReleaseAll at abort).
fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    // SAFETY: SHARED is written only in the postmaster before any backend exists.
    let shared = unsafe { SHARED };
    if !PRELOADED.load(Ordering::Relaxed) || shared.is_null() {
        AuthError::ObjectNotInPrerequisiteState(
            "nile_auth must be listed in shared_preload_libraries to check passwords".into(),
        )
        .raise();
    }
    // SAFETY: a valid LWLock and table in shared memory; the table is only touched under it.
    unsafe {
        pg_sys::LWLockAcquire((*shared).lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let result = f(&mut (*shared).table);
        pg_sys::LWLockRelease((*shared).lock);
        result
    }
}

/// Between a package upgrade and `ALTER EXTENSION nile_auth UPDATE`, the new library runs over
/// the previous release's tables, which have no nile_auth.login_failures: anything that counts
/// failures refuses (55000) until the update, rather than half working.
pub fn require_schema() {
    if !crate::db::schema_updated() {
        AuthError::ObjectNotInPrerequisiteState("nile_auth is not updated yet: run ALTER EXTENSION nile_auth UPDATE".into())
            .raise();
    }
}

/// On Citus, each node would count failures in its own shared memory, and a client reaches
/// every node (run_command_on_workers): passwords are checked on the coordinator only (55000
/// elsewhere), so the count is one.
fn require_citus_coordinator() {
    if !crate::db::citus_installed() {
        return;
    }
    let group = crate::privilege::as_extension_owner(|| {
        crate::db::read_one::<i32>("SELECT groupid FROM pg_catalog.pg_dist_local_group", &[])
    });
    if group != Some(0) {
        AuthError::ObjectNotInPrerequisiteState("on Citus, passwords are checked on the coordinator only".into()).raise();
    }
}

fn policy() -> Policy {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Policy {
        max_failed: u16::try_from(MAX_FAILED_LOGINS.get()).unwrap_or(u16::MAX),
        window_ms: i64::from(LOCKOUT_WINDOW.get()) * 1000,
        duration_ms: i64::from(LOCKOUT_DURATION.get()) * 1000,
        now_ms,
    }
}

fn database() -> u32 {
    // SAFETY: set in every backend that runs SQL.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// The account a password is tried against: a registered user, or, for an email nobody
/// registered, a key derived from the email, so that both leave the same traces.
pub struct Account {
    key: Uuid,
    registered: bool,
    hash: String,
    /// Deactivated, or locked by `lock_account`: refused without checking the password.
    barred: Option<Failure>,
    persisted: Persisted,
}

impl Account {
    /// Reads what a password check needs. `user` is the registered user, if any, and whether it
    /// is deactivated; `email` derives the key when there is none. The same two tables are
    /// read either way.
    pub fn read(user: Option<(Uuid, bool)>, email: &str) -> Account {
        require_schema();
        let row = read_row_prepared(
            "SELECT a.account, c.password_hash, COALESCE(c.locked_until > now(), false), f.failures,
                    (extract(epoch FROM f.last_failure) * 1000)::bigint,
                    (extract(epoch FROM f.locked_until) * 1000)::bigint
               FROM (SELECT COALESCE($1, encode(substring(pg_catalog.sha256(convert_to('nile_auth unknown email '
                             || lower($2), 'UTF8')) FROM 1 FOR 16), 'hex')::uuid) AS account) a
               LEFT JOIN nile_auth.credentials c ON c.user_id = a.account
               LEFT JOIN nile_auth.login_failures f ON f.account = a.account",
            &[user.map(|(id, _)| to_pg(id)).into(), email.into()],
            |row| {
                Ok((
                    row.get::<pgrx::Uuid>(1)?.map(crate::db::from_pg),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<bool>(3)?.unwrap_or(false),
                    Persisted {
                        failures: row.get::<i32>(4)?.unwrap_or(0),
                        last_failure_ms: row.get::<i64>(5)?.unwrap_or(0),
                        locked_until_ms: row.get::<i64>(6)?.unwrap_or(0),
                    },
                ))
            },
        );
        let Some((Some(key), hash, manually_locked, persisted)) = row else {
            AuthError::Internal("no lockout row".into()).raise()
        };
        let barred = match user {
            Some((_, true)) => Some(Failure::Deactivated),
            Some(_) if manually_locked => Some(Failure::Locked),
            _ => None,
        };
        Account { key, registered: user.is_some(), hash, barred, persisted }
    }

    /// The stored hash, for a caller that rehashes after a right password.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// Returns when `password` is right for `account`. Otherwise the attempt is recorded and 28P01
/// raised; every refusal costs one argon2 verification, so timing tells them apart no better
/// than the message does.
pub fn check_password(account: &Account, password: &str) {
    require_citus_coordinator();
    let refuse = |failure: Failure, count: Option<Count>| -> ! {
        if count.is_none() {
            passwords::verify_against_dummy(password);
        }
        worker::record(&account_job(account, failure, count));
        AuthError::InvalidCredentials.raise()
    };
    if !account.registered {
        refuse(Failure::UnknownEmail, None);
    }
    if let Some(barred) = account.barred {
        refuse(barred, None);
    }
    let ticket = with_table(|t| t.reserve(database(), account.key.as_bytes(), account.persisted, &policy()));
    let ticket = match ticket {
        Ok(ticket) => ticket,
        Err(Refusal::Locked) => refuse(Failure::Locked, None),
        Err(Refusal::Full) => {
            pgrx::ereport!(
                PgLogLevel::LOG_SERVER_ONLY,
                PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                "nile_auth: every lockout slot holds an account with recent failed logins; password checks are refused until some expire"
            );
            refuse(Failure::Uncounted, None)
        }
    };
    // Nothing between reserve and settle can raise: a lost reservation would count forever.
    let right = passwords::verify_password(password, &account.hash);
    let count = with_table(|t| t.settle(ticket, right, &policy()));
    if !right {
        refuse(Failure::WrongPassword, Some(count));
    }
    if account.persisted.failures > 0 || account.persisted.locked_until_ms > 0 {
        write("DELETE FROM nile_auth.login_failures WHERE account = $1", &[to_pg(account.key).into()]);
    }
}

fn account_job(account: &Account, failure: Failure, count: Option<Count>) -> worker::Job {
    let p = policy();
    let persisted = account.persisted;
    let in_window = persisted.last_failure_ms + p.window_ms > p.now_ms;
    let (failures, locked_until_ms, locked_now) = match count {
        Some(c) => (i32::from(c.failures), c.locked_until_ms, c.locked_now),
        // An unknown email keeps its own count in the table (never a lock); other refusals
        // count nothing (0 leaves the stored count as it is).
        None if failure == Failure::UnknownEmail => (if in_window { persisted.failures + 1 } else { 1 }, 0, false),
        None => (0, 0, false),
    };
    worker::Job {
        database: database(),
        account: account.key,
        registered: account.registered,
        failure,
        failures,
        locked_until_ms,
        locked_now,
        window_s: LOCKOUT_WINDOW.get(),
    }
}

/// Forgets the account's failures and automatic lock (unlock_account, reset_password), in
/// shared memory now and in nile_auth.login_failures with the caller's transaction.
pub fn forget(user: Uuid) {
    require_schema();
    with_table(|t| t.forget(database(), user.as_bytes()));
    write("DELETE FROM nile_auth.login_failures WHERE account = $1", &[to_pg(user).into()]);
}
