//! Account administration: who administers an account, activation, manual locks, passwords,
//! and the backend's view of every user. Who may call each function is part of its contract (see
//! docs/api.md, "Account administration").

use crate::audit::record;
use crate::db::{from_pg, read_all, read_one, read_row, to_pg, write};
use crate::errors::{AuthError, OrRaise, required};
use crate::identity::require_account_user;
use crate::passwords;
use crate::one_time_tokens::{self, PASSWORD_RESET};
use crate::caller::{Caller, account_caller, require_trusted_backend};
use crate::sessions::{EndReason, revoke_all};
use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::json;
use uuid::Uuid;


/// For the backend-only account functions: the caller is the trusted backend and `user` is live.
pub(crate) fn require_backend_for_live_user(user: Uuid, what: &str) {
    require_trusted_backend(what);
    require_live_user(user);
}

pub(crate) fn user_not_found(user: Uuid) -> AuthError {
    AuthError::NotFound(format!("user {user} not found"))
}

pub(crate) fn require_live_user(user: Uuid) {
    if read_one::<bool>("SELECT true FROM nile_auth.users WHERE id = $1 AND deleted IS NULL", &[to_pg(user).into()]) != Some(true) {
        user_not_found(user).raise();
    }
}

/// The trusted backend, or an owner or admin of every live tenant the user joined by their own
/// action or was created by (tenant_users.origin is not 'added'), and there is at least one:
/// being added to a tenant by someone else gives that tenant no power over your account, and
/// takes none from the others (anyone may link a user by id). A user who shares no tenant with the caller is reported as not found.
pub(crate) fn authorize_account_admin(user: Uuid) -> Option<Uuid> {
    require_live_user(user);
    let me = match account_caller().or_raise() {
        Caller::TrustedBackend => return None,
        Caller::User(me) => me,
    };
    let (shared, administered, total) = read_row(
        "SELECT count(mine.user_id),
                count(*) FILTER (WHERE mine.roles && ARRAY['owner', 'admin'] AND theirs.origin <> 'added'),
                count(*) FILTER (WHERE theirs.origin <> 'added')
           FROM nile_auth.tenant_users theirs
           JOIN nile_auth.tenants t ON t.id = theirs.tenant_id AND t.deleted IS NULL
           LEFT JOIN nile_auth.tenant_users mine
                  ON mine.tenant_id = theirs.tenant_id AND mine.user_id = $2 AND mine.deleted IS NULL
          WHERE theirs.user_id = $1 AND theirs.deleted IS NULL",
        &[to_pg(user).into(), to_pg(me).into()],
        |row| Ok((row.get::<i64>(1)?.unwrap_or(0), row.get::<i64>(2)?.unwrap_or(0), row.get::<i64>(3)?.unwrap_or(0))),
    )
    .unwrap_or((0, 0, 0));
    if shared == 0 && me != user {
        user_not_found(user).raise();
    }
    if total == 0 || administered < total {
        AuthError::PermissionDenied(format!(
            "only the trusted backend, or an owner or admin of every tenant of user {user} that created the user or that the user joined by their own action, may do this"
        ))
        .raise();
    }
    Some(me)
}

fn store_password(user: Uuid, new_password: &str) {
    passwords::check_password_policy(new_password, crate::users::min_password_chars()).or_raise();
    write(
        "UPDATE nile_auth.credentials SET password_hash = $2, updated = now() WHERE user_id = $1",
        &[to_pg(user).into(), passwords::hash_password(new_password).or_raise().into()],
    );
    revoke_all(user, EndReason::PasswordChanged);
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn deactivate_user(user_id: Option<pgrx::Uuid>) -> bool {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let actor = authorize_account_admin(user);
    write("UPDATE nile_auth.users SET deactivated = now(), updated = now() WHERE id = $1 AND deactivated IS NULL", &[to_pg(user).into()]);
    revoke_all(user, EndReason::Deactivated);
    record("user.deactivated", actor, None, Some(&user.to_string()), json!({}));
    true
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn activate_user(user_id: Option<pgrx::Uuid>) -> bool {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let actor = authorize_account_admin(user);
    write("UPDATE nile_auth.users SET deactivated = NULL, updated = now() WHERE id = $1", &[to_pg(user).into()]);
    record("user.activated", actor, None, Some(&user.to_string()), json!({}));
    true
}

/// Locks an account until `unlock_account`: logins fail exactly like a wrong password.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn lock_account(user_id: Option<pgrx::Uuid>) -> bool {
    let user = from_pg(required(user_id, "user_id").or_raise());
    require_backend_for_live_user(user, "lock_account");
    write("UPDATE nile_auth.credentials SET locked_until = 'infinity' WHERE user_id = $1", &[to_pg(user).into()]);
    record("account.locked", None, None, Some(&user.to_string()), json!({"manual": true}));
    true
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn unlock_account(user_id: Option<pgrx::Uuid>) -> bool {
    let user = from_pg(required(user_id, "user_id").or_raise());
    require_backend_for_live_user(user, "unlock_account");
    write("UPDATE nile_auth.credentials SET locked_until = NULL WHERE user_id = $1", &[to_pg(user).into()]);
    crate::lockout::forget(user);
    record("account.unlocked", None, None, Some(&user.to_string()), json!({}));
    true
}

/// Changes the current user's password. Every session ends and tokens issued before are
/// revoked, the caller's own included, so a new session is returned (as from login).
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn change_password(old_password: Option<&str>, new_password: Option<&str>) -> JsonB {
    let old_password = required(old_password, "old_password").or_raise();
    let new_password = required(new_password, "new_password").or_raise();
    let user = require_account_user().or_raise();
    if old_password.len() > passwords::MAX_PASSWORD_BYTES {
        AuthError::InvalidCredentials.raise();
    }
    let email = crate::email::current_email(user);
    // The old password is checked like a login's: counted, and refused once the account locks.
    crate::lockout::check_password(&crate::lockout::Account::read(Some((user, false)), &email), old_password);
    store_password(user, new_password);
    record("password.changed", Some(user), None, Some(&user.to_string()), json!({}));
    crate::accounts::signed_in(user, &email, None, None)
}

/// Sets a user's password as the trusted backend (no old password needed).
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn set_password(user_id: Option<pgrx::Uuid>, new_password: Option<&str>) -> bool {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let new_password = required(new_password, "new_password").or_raise();
    require_backend_for_live_user(user, "set_password");
    store_password(user, new_password);
    record("password.set", None, None, Some(&user.to_string()), json!({}));
    true
}

/// For the trusted backend: a one-time password reset token to mail to `email`, or NULL when no
/// live user has that email (no error, so the caller's response need not differ).
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn request_password_reset(email: Option<&str>) -> Option<String> {
    let email = &crate::users::lookup_form(required(email, "email").or_raise());
    require_trusted_backend("request_password_reset");
    let (user, stored_email) = read_row(
        "SELECT id, email FROM nile_auth.users WHERE lower(email) = lower($1) AND deleted IS NULL",
        &[email.into()],
        |row| Ok((row.get::<pgrx::Uuid>(1)?, row.get::<String>(2)?)),
    )
    .and_then(|(u, e)| Some((from_pg(u?), e?)))?;
    let token = one_time_tokens::issue(user, PASSWORD_RESET, &stored_email);
    record("password.reset_requested", None, None, Some(&user.to_string()), json!({}));
    Some(token)
}

/// Sets a new password with a reset token. Revokes earlier tokens and clears a lockout from
/// failed logins (not a manual lock).
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn reset_password(token: Option<&str>, new_password: Option<&str>) -> bool {
    let token = required(token, "token").or_raise();
    let new_password = required(new_password, "new_password").or_raise();
    passwords::check_password_policy(new_password, crate::users::min_password_chars()).or_raise();
    let (user, _, _) = one_time_tokens::consume(token, &[PASSWORD_RESET]);
    store_password(user, new_password);
    crate::lockout::forget(user);
    record("password.reset", Some(user), None, Some(&user.to_string()), json!({}));
    true
}

/// `list_users(true)`: every live user, for the trusted backend (Nexla's access_role=all);
/// `list_users(false)` is `list_users()`.
#[pg_extern(security_definer, stable, name = "list_users")]
#[search_path(pg_catalog, pg_temp)]
fn list_users_all(all: Option<bool>) -> SetOfIterator<'static, JsonB> {
    if !required(all, "all").or_raise() {
        return SetOfIterator::new(read_all::<JsonB>("SELECT nile_auth.list_users()", &[]));
    }
    require_trusted_backend("list_users(true)");
    SetOfIterator::new(read_all::<JsonB>(
        "SELECT profile FROM nile_auth._user_profiles ORDER BY created, id",
        &[],
    ))
}

/// Profile changes to another user (same fields as update_me), for whoever may administer the
/// account (see `authorize_account_admin`).
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn update_user(user_id: Option<pgrx::Uuid>, changes: Option<crate::json_input::JsonInput>) -> JsonB {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let changes = required(changes, "changes").or_raise();
    authorize_account_admin(user);
    crate::identity::update_profile(user, &changes.0);
    crate::identity::user_json(user).unwrap_or_else(|| user_not_found(user).raise())
}
