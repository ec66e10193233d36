//! A spent refresh token presented after nile_auth.refresh_reuse_interval: someone holds a copy
//! (stolen, or a client that lost track), so the session ends for everyone. The caller raises
//! 28000 and its transaction rolls back, so the ending is written by a background worker
//! (`detached`) before the caller raises.

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::pg_sys;
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
        let Some(user) = crate::db::read_one::<pgrx::Uuid>(
            "SELECT user_id FROM nile_auth.sessions WHERE id = $1",
            &[crate::db::to_pg(session).into()],
        ) else {
            return;
        };
        if super::end_where("s.id = $1", vec![crate::db::to_pg(session).into()], super::EndReason::RefreshTokenReused) > 0 {
            // No actor: whoever presented the token may not be the user.
            let user = crate::db::from_pg(user).to_string();
            crate::audit::record("session.refresh_token_reused", None, None, Some(&user), serde_json::json!({"sessionId": session}));
        }
    });
}
