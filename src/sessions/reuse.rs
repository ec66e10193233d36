//! A spent refresh token presented after nile_auth.refresh_reuse_interval: someone holds a copy
//! (stolen, or a client that lost track), so the session ends for everyone. The caller raises
//! 28000 and its transaction rolls back, so the ending is written by a background worker
//! (`detached`) before the caller raises.

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};
use uuid::Uuid;

/// Ends `session` and writes the audit entry, committed whatever the caller does next. Without
/// a free worker slot the session stays and a WARNING says so.
pub fn end_session(session: Uuid) {
    // SAFETY: set in every backend connected to a database.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    if !crate::detached::run("nile_auth refresh reuse", "nile_auth_refresh_reuse_worker", &format!("{database} {session}")) {
        pgrx::warning!("nile_auth: no background worker slot to end a session whose refresh token was reused (raise max_worker_processes)");
    }
}

/// The worker's entry point (named in `end_session`).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn nile_auth_refresh_reuse_worker(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let job = BackgroundWorker::get_extra().split_once(' ').and_then(|(db, s)| Some((db.parse::<u32>().ok()?, Uuid::parse_str(s).ok()?)));
    let Some((database, session)) = job else {
        pgrx::warning!("nile_auth refresh-reuse worker: unreadable job");
        return;
    };
    crate::detached::in_transaction(database, || {
        let id = pgrx::Uuid::from_bytes(*session.as_bytes());
        let user = Spi::get_one_with_args::<pgrx::Uuid>(
            "WITH ended AS (
                 UPDATE nile_auth.sessions SET ended = pg_catalog.now(), end_reason = 'refresh_token_reused'
                  WHERE id = $1 AND ended IS NULL RETURNING user_id),
             dropped AS (DELETE FROM nile_auth.refresh_tokens WHERE token_hash IN (
                             SELECT token_hash FROM nile_auth.refresh_tokens
                              WHERE session_id = $1 FOR UPDATE SKIP LOCKED))
             SELECT user_id FROM ended",
            &[id.into()],
        );
        if let Ok(Some(user)) = user {
            let _ = Spi::run_with_args(
                // No actor: whoever presented the token may not be the user.
                "INSERT INTO nile_auth.audit_log (event, target, details) VALUES ('session.refresh_token_reused', $1, $2)",
                &[
                    Uuid::from_bytes(*user.as_bytes()).to_string().into(),
                    JsonB(serde_json::json!({"sessionId": session})).into(),
                ],
            );
        }
    });
}
