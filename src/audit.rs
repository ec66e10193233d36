//! The append-only audit log: one writer for every event, and `audit_events` to read it.
//! Entries never contain a password, token, key or hash: callers pass ids, emails and names.

use crate::db::{read_all, to_pg, write_prepared};
use crate::errors::{AuthError, OrRaise};
use crate::caller::{Caller, caller_and_scope};
use crate::tenancy::context::access;
use pgrx::JsonB;
use pgrx::prelude::*;
use uuid::Uuid;

/// Appends one event. Runs inside the caller's transaction: it is kept exactly when the change
/// it describes is kept (failed logins are written by the lockout worker, see `lockout`).
pub fn record(event: &str, actor: Option<Uuid>, tenant: Option<Uuid>, target: Option<&str>, details: serde_json::Value) {
    write_prepared(
        "INSERT INTO nile_auth.audit_log (actor, tenant_id, event, target, details) VALUES ($1, $2, $3, $4, $5)",
        &[actor.map(to_pg).into(), tenant.map(to_pg).into(), event.into(), target.into(), JsonB(details).into()],
    );
}

/// Audit entries the caller may see, newest first: the trusted backend sees all; an end user
/// their own (as actor or target); an owner or admin of a tenant, that tenant's.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn audit_events(
    user_id: default!(Option<pgrx::Uuid>, "NULL"),
    tenant_id: default!(Option<pgrx::Uuid>, "NULL"),
    since: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
    max_rows: default!(Option<i32>, 100),
) -> SetOfIterator<'static, JsonB> {
    let max_rows = max_rows.unwrap_or(100);
    if !(1..=10_000).contains(&max_rows) {
        AuthError::InvalidParameter("max_rows must be between 1 and 10000".into()).raise();
    }
    let filter_user = user_id.map(crate::db::from_pg);
    // `me` restricts rows to the caller's own events; NULL for the trusted backend and for an
    // owner or admin reading their tenant.
    let (caller, scope) = caller_and_scope().or_raise();
    // A token limited to one tenant reads that tenant's events only (as its owner or admin).
    let tenant_id = tenant_id.or(scope.map(crate::db::to_pg));
    let me = match (caller, tenant_id) {
        (Caller::TrustedBackend, _) => None,
        (Caller::User(_), Some(tenant)) => {
            access(crate::db::from_pg(tenant)).require_admin();
            None
        }
        (Caller::User(me), None) => {
            if filter_user.is_some_and(|u| u != me) {
                AuthError::PermissionDenied("only your own audit events, or a tenant's as its owner or admin".into()).raise();
            }
            Some(me)
        }
    };
    let rows = read_all::<JsonB>(
        "SELECT jsonb_build_object('id', id, 'at', at, 'actor', actor, 'tenantId', tenant_id,
                                   'event', event, 'target', target, 'details', details)
           FROM nile_auth.audit_log
          WHERE ($1::uuid IS NULL OR actor = $1 OR target = $1::text)
            AND ($2::uuid IS NULL OR actor = $2 OR target = $2::text)
            AND ($3::uuid IS NULL OR tenant_id = $3)
            AND ($4::timestamptz IS NULL OR at >= $4)
          ORDER BY at DESC, id DESC
          LIMIT $5",
        &[me.map(to_pg).into(), user_id.into(), tenant_id.into(), since.into(), max_rows.into()],
    );
    SetOfIterator::new(rows)
}
