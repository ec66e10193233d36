//! Who is calling: a verified user, or the trusted application backend. The one place that
//! decides it, so every function and policy agrees.
//!
//! Trust is granted only by catalog facts no client can change:
//! - a token in `nile.auth_token` makes the session that user, if it verifies; a token that does
//!   not verify is an error (28000) for everything that acts for the caller, never trust;
//! - with no token, the session is the trusted backend only if its role (the outer role, before
//!   any SECURITY DEFINER switch) is a superuser or has the privileges of `nile_auth_backend`,
//!   and the connection is not one Citus opened from another node (there the role may be a
//!   SECURITY DEFINER function's owner). Every other role is an end-user role and needs a
//!   verified token (28000 without one).

use crate::errors::{AuthError, AuthResult};
use crate::identity::session_identity;
use pgrx::pg_sys;
use uuid::Uuid;

/// The role whose members (and superusers) are trusted application backends.
pub const BACKEND_ROLE: &std::ffi::CStr = c"nile_auth_backend";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    TrustedBackend,
    User(Uuid),
}

impl Caller {
    /// The acting user, for the audit log; `None` for the trusted backend.
    pub fn user(self) -> Option<Uuid> {
        match self {
            Caller::User(user) => Some(user),
            Caller::TrustedBackend => None,
        }
    }
}

pub fn caller() -> AuthResult<Caller> {
    caller_and_scope().map(|(caller, _)| caller)
}

/// The caller, and the one tenant its token is limited to (tokens from tenant API keys).
pub fn caller_and_scope() -> AuthResult<(Caller, Option<Uuid>)> {
    match session_identity()? {
        Some(v) => Ok((Caller::User(v.user_id), v.tenant)),
        None if is_backend_role() => Ok((Caller::TrustedBackend, None)),
        None => Err(AuthError::NotAuthenticated),
    }
}

/// Whether the session's role is a trusted backend: a superuser, or a role with the privileges
/// of `nile_auth_backend`. The outer role is the one the client connected as or SET ROLE to;
/// SECURITY DEFINER functions (ours, or an application's) do not change it. Maintenance runs
/// (autovacuum, a superuser's ANALYZE) keep the outer role while executing a table owner's
/// index expressions, so there nobody is a backend (see `identity::in_maintenance`). Both checks read
/// the backend's role caches, which PostgreSQL invalidates when roles or grants change.
pub fn is_backend_role() -> bool {
    if crate::identity::in_maintenance() {
        return false;
    }
    // SAFETY: plain catalog-cache lookups inside a transaction.
    unsafe {
        let role = pg_sys::GetOuterUserId();
        if pg_sys::superuser_arg(role) {
            return true;
        }
        if citus_connection() {
            return false;
        }
        let backend = pg_sys::get_role_oid(BACKEND_ROLE.as_ptr(), true);
        backend != pg_sys::InvalidOid && pg_sys::has_privs_of_role(role, backend)
    }
}

/// Whether this backend is a connection Citus opened from another node to run part of a query.
/// Citus connects as the current user there, and inside a SECURITY DEFINER function that is the
/// function's owner, not the client: on such a connection a role proves nothing, and only a
/// token makes a caller. Citus names every connection it opens `citus_internal gpid=…` (or
/// `citus_rebalancer`, `citus_run_command`) at start-up, and does not forward a change of
/// application_name; the name the connection started with is its reset value, which SET does not
/// move. A client that names itself so only gives up role trust. A parallel worker has its
/// leader's current settings but not the ones it started with, and code a query runs can change
/// the current name (a hook in a type the query names, through a forwarded search_path): there
/// it cannot be told, so on a Citus node no parallel worker takes a role as trust.
pub(crate) fn citus_connection() -> bool {
    if !crate::db::citus_installed() {
        return false;
    }
    // SAFETY: a process-local variable, -1 outside parallel workers.
    if unsafe { pg_sys::ParallelWorkerNumber } >= 0 {
        return true;
    }
    crate::settings::application_name_starts_with(b"citus_", true)
}

/// The caller of an account-wide operation (a new tenant, account administration): 42501 for a
/// token limited to one tenant.
pub fn account_caller() -> AuthResult<Caller> {
    match caller_and_scope()? {
        (_, Some(scope)) => Err(AuthError::scoped(scope)),
        (caller, None) => Ok(caller),
    }
}

/// 42501 unless the session's role is a trusted backend role (with or without a user's token):
/// for tokens meant to be mailed (invitations, email verification and change). Holding one
/// proves an address only if the user never sees it before it is mailed, so an end-user role,
/// which a user may drive directly, never receives one.
pub fn require_delivery_role(what: &str) {
    if !is_backend_role() {
        crate::errors::AuthError::PermissionDenied(format!(
            "{what} returns a token to be mailed: only a trusted backend role (a member of nile_auth_backend) may receive it"
        ))
        .raise();
    }
}

/// 42501 unless the caller is the trusted backend (28000 for an end-user role without a token
/// or with one that does not verify).
pub fn require_trusted_backend(what: &str) {
    use crate::errors::OrRaise;
    if caller().or_raise() != Caller::TrustedBackend {
        AuthError::PermissionDenied(format!("{what} is for the trusted application backend only")).raise();
    }
}
