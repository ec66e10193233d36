//! A user's address: proving it (request_email_verification, verify_email), changing it
//! (change_email, then verify_email at the new address) and the backend's set_email.

use crate::admin::{require_backend_for_live_user, user_not_found};
use crate::audit::record;
use crate::db::{from_pg, read_one, to_pg};
use crate::errors::{AuthError, OrRaise, required};
use crate::identity::{require_account_user, user_json};
use crate::one_time_tokens::{self, EMAIL_CHANGE, EMAIL_VERIFICATION};
use crate::users::{email_taken_by_other, normalize_email};
use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::json;
use uuid::Uuid;

pub(crate) fn current_email(user: Uuid) -> String {
    read_one::<String>("SELECT email FROM nile_auth.users WHERE id = $1 AND deleted IS NULL", &[to_pg(user).into()])
        .unwrap_or_else(|| user_not_found(user).raise())
}

/// A one-time token proving the current user's email address, to be mailed to it.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn request_email_verification() -> String {
    let user = require_account_user().or_raise();
    crate::caller::require_delivery_role("request_email_verification");
    let token = one_time_tokens::issue(user, EMAIL_VERIFICATION, &current_email(user));
    record("email.verification_requested", Some(user), None, Some(&user.to_string()), json!({}));
    token
}

/// Starts a change of the current user's address: the password is checked like a login's
/// (counted, refused once the account locks), the new address is kept with a one-time token
/// to mail to it, and `verify_email` of that token switches the address. Until then the old
/// address keeps working. Returns `{"id", "email", "token"}`: the pending address and its token.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn change_email(new_email: Option<&str>, password: Option<&str>) -> JsonB {
    let new_email = required(new_email, "new_email").or_raise();
    let password = required(password, "password").or_raise();
    let user = require_account_user().or_raise();
    crate::caller::require_delivery_role("change_email");
    let email = current_email(user);
    if password.len() > crate::passwords::MAX_PASSWORD_BYTES {
        AuthError::InvalidCredentials.raise();
    }
    // The password first: a stolen token alone learns nothing, not even which addresses are taken.
    crate::lockout::check_password(&crate::lockout::Account::read(Some((user, false)), &email), password);
    let new_email = normalize_email(new_email).or_raise();
    if new_email.to_lowercase() == email.to_lowercase() {
        AuthError::InvalidParameter("new_email is the account's address already".into()).raise();
    }
    if email_taken_by_other(&new_email, Some(user)) {
        AuthError::EmailTaken.raise();
    }
    let token = one_time_tokens::issue(user, EMAIL_CHANGE, &new_email);
    record("email.change_requested", Some(user), None, Some(&user.to_string()), json!({}));
    JsonB(json!({"id": user, "email": new_email, "token": token}))
}

/// Uses a token mailed by request_email_verification (marks the address verified) or by
/// change_email (switches the account to the new address, verified). Needs no session
/// identity: the token is the proof. 28000 for a token that is unknown, used, expired, or for
/// an address the user has since changed; 23505 when the new address was taken meanwhile.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn verify_email(token: Option<&str>) -> bool {
    let token = required(token, "token").or_raise();
    let (user, email, purpose) = one_time_tokens::consume(token, &[EMAIL_VERIFICATION, EMAIL_CHANGE]);
    let event = if purpose == EMAIL_CHANGE {
        if email_taken_by_other(&email, Some(user)) {
            AuthError::EmailTaken.raise();
        }
        switch_email(user, &email, true);
        "email.changed"
    } else {
        let updated = Spi::get_one_with_args::<bool>(
            "UPDATE nile_auth.users SET email_verified = now(), updated = now()
              WHERE id = $1 AND email = $2 AND deleted IS NULL RETURNING true",
            &[to_pg(user).into(), email.as_str().into()],
        )
        .or_raise();
        if updated != Some(true) {
            AuthError::InvalidToken.raise();
        }
        "email.verified"
    };
    record(event, Some(user), None, Some(&user.to_string()), json!({}));
    true
}

/// Sets the address of a live user and voids every one-time token mailed to the old one.
/// `verified`: the new address is proven (verify_email); otherwise it is unverified, unless it
/// is the same address in another letter case.
fn switch_email(user: Uuid, email: &str, verified: bool) {
    let updated = Spi::get_one_with_args::<bool>(
        "UPDATE nile_auth.users
            SET email_verified = CASE WHEN $3 THEN now() WHEN lower(email) = lower($2) THEN email_verified END,
                email = $2, updated = now()
          WHERE id = $1 AND deleted IS NULL RETURNING true",
        &[to_pg(user).into(), email.into(), verified.into()],
    )
    .or_raise();
    if updated != Some(true) {
        AuthError::InvalidToken.raise();
    }
    one_time_tokens::void_all(user);
}

/// For the trusted backend: sets a user's address at once (Nile's PUT /users with a new email).
/// The new address is unverified. 23505 when another live user has it.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn set_email(user_id: Option<pgrx::Uuid>, email: Option<&str>) -> JsonB {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let email = required(email, "email").or_raise();
    require_backend_for_live_user(user, "set_email");
    let email = normalize_email(email).or_raise();
    if email_taken_by_other(&email, Some(user)) {
        AuthError::EmailTaken.raise();
    }
    switch_email(user, &email, false);
    record("email.set", None, None, Some(&user.to_string()), json!({}));
    user_json(user).unwrap_or_else(|| user_not_found(user).raise())
}
