//! The one place that turns a failure into a PostgreSQL error with a SQLSTATE.
//!
//! Every user-facing failure in the extension is an `AuthError`; `raise()` reports it. Messages
//! are written for people and never contain a secret (password, token, key, hash).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// 22023: an argument is missing, malformed or out of range.
    InvalidParameter(String),
    /// 22P02: a setting or argument that should be a uuid is not one.
    InvalidUuid(String),
    /// 23505: the email is already registered (any letter case).
    EmailTaken,
    /// 23505: something that must be unique exists already (a membership an invitation would create).
    AlreadyExists(String),
    /// 28P01: unknown email, wrong password (one message for both, so emails cannot be probed).
    InvalidCredentials,
    /// 28P01: an API key that does not log in (unknown, revoked, expired, or its user cannot).
    InvalidApiKey,
    /// 28000: a token that fails verification for any reason.
    InvalidToken,
    /// 28000: a refresh token that renews nothing (unknown, reused too late, or its session ended).
    InvalidRefreshToken,
    /// 28000: an operation that needs a verified identity was called without one.
    NotAuthenticated,
    /// The token's user has no live membership in the tenant asked for.
    NotAMember { user: uuid::Uuid, tenant: uuid::Uuid },
    /// An end user's or tenant-scoped call needs a current tenant and none is set.
    NoTenant,
    /// 42501: the caller is not allowed to do this.
    PermissionDenied(String),
    /// P0002: the row does not exist, or the caller may not know that it does.
    NotFound(String),
    /// 55000: the database is not in a state that allows the operation.
    ObjectNotInPrerequisiteState(String),
    /// XX000: a broken invariant (a library refused input it should accept).
    Internal(String),
}

impl AuthError {
    pub fn sqlstate(&self) -> Code {
        match self {
            AuthError::InvalidParameter(_) => Code::ERRCODE_INVALID_PARAMETER_VALUE,
            AuthError::InvalidUuid(_) => Code::ERRCODE_INVALID_TEXT_REPRESENTATION,
            AuthError::EmailTaken | AuthError::AlreadyExists(_) => Code::ERRCODE_UNIQUE_VIOLATION,
            AuthError::InvalidCredentials | AuthError::InvalidApiKey => Code::ERRCODE_INVALID_PASSWORD,
            AuthError::InvalidToken | AuthError::InvalidRefreshToken | AuthError::NotAuthenticated => {
                Code::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
            }
            AuthError::PermissionDenied(_) | AuthError::NotAMember { .. } => Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            AuthError::NotFound(_) => Code::ERRCODE_NO_DATA_FOUND,
            AuthError::ObjectNotInPrerequisiteState(_) | AuthError::NoTenant => {
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            AuthError::Internal(_) => Code::ERRCODE_INTERNAL_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            AuthError::InvalidParameter(m)
            | AuthError::PermissionDenied(m)
            | AuthError::NotFound(m)
            | AuthError::AlreadyExists(m)
            | AuthError::ObjectNotInPrerequisiteState(m) => m.clone(),
            AuthError::Internal(m) => format!("nile_auth internal error: {m}"),
            AuthError::InvalidUuid(value) => {
                format!("invalid input syntax for type uuid: \"{value}\"")
            }
            AuthError::EmailTaken => "email is already registered".into(),
            AuthError::InvalidCredentials => "invalid email or password".into(),
            AuthError::InvalidApiKey => "invalid API key".into(),
            AuthError::InvalidToken => "invalid or expired token".into(),
            AuthError::InvalidRefreshToken => "invalid refresh token".into(),
            AuthError::NotAuthenticated => "no authenticated user: this role needs a verified token".into(),
            AuthError::NotAMember { user, tenant } => format!("user {user} is not a member of tenant {tenant}"),
            AuthError::NoTenant => "no tenant is set".into(),
        }
    }

    /// What to do about it, for the errors an application meets per request. Pool-safe forms
    /// only: a session-level SET would carry identity to the next user of the connection.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            AuthError::NotAuthenticated => Some(
                "Start each transaction with nile_auth.set_context(token, tenant_id), the token as a bind parameter.",
            ),
            AuthError::NotAMember { .. } => Some(
                "The tenant comes from nile.tenant_id; nile_auth.list_tenants() lists the user's tenants. (A row of another tenant fails with \"violates row-level security policy\" instead.)",
            ),
            AuthError::NoTenant => Some(
                "Pass the tenant to nile_auth.set_context(token, tenant_id) in this transaction; a trusted backend without a token calls nile_auth.set_tenant(tenant_id, true).",
            ),
            _ => None,
        }
    }

    /// 42501 for a token limited to one tenant (from a tenant API key) used outside it, or for an
    /// account-wide action it may not take.
    pub fn scoped(tenant: uuid::Uuid) -> Self {
        AuthError::PermissionDenied(format!("this token is limited to tenant {tenant}"))
    }

    /// Reports the error to PostgreSQL; the current (sub)transaction is aborted.
    ///
    /// The statement that failed may carry a secret (a password, a token, a key), so its text is
    /// kept out of the server log, as errhidestmt() does: the STATEMENT line is written only when
    /// `debug_query_string` is set, and PostgreSQL sets it again for the next statement. (pgrx
    /// rebuilds reports it catches, dropping the errhidestmt flag, so the flag cannot be used.)
    pub fn raise(self) -> ! {
        // SAFETY: a backend-local global, read only when the error is logged.
        unsafe { pg_sys::debug_query_string = std::ptr::null() };
        let report = ErrorReport::new(self.sqlstate(), self.message(), "nile_auth");
        match self.hint() {
            Some(hint) => report.set_hint(hint),
            None => report,
        }
        .report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

pub type AuthResult<T> = Result<T, AuthError>;

/// Unwraps a result, raising the error as a PostgreSQL error.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for AuthResult<T> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| e.raise())
    }
}

/// SPI failures are internal (our own queries are fixed text); report them as such without
/// exposing Rust panic text. Errors raised *by* Postgres inside SPI propagate unchanged.
impl<T> OrRaise<T> for Result<T, pgrx::spi::Error> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| AuthError::Internal(format!("query failed: {e}")).raise())
    }
}

/// Treats a NULL argument as the 22023 the contract asks for.
pub fn required<T>(value: Option<T>, name: &str) -> AuthResult<T> {
    value.ok_or_else(|| AuthError::InvalidParameter(format!("{name} must not be NULL")))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn credential_errors_share_one_message() {
        // The same text for unknown email and wrong password is what prevents enumeration.
        assert_eq!(AuthError::InvalidCredentials.message(), "invalid email or password");
    }

    #[test]
    fn no_secret_in_token_message() {
        assert!(!AuthError::InvalidToken.message().contains("ey"));
    }
}
