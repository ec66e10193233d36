//! One-time tokens mailed to an address: password reset, email verification, email change.
//! 256 random bits, shown once; only their SHA-256 is stored (nile_auth.one_time_tokens).

use crate::db::{from_pg, to_pg, write};
use crate::errors::{AuthError, OrRaise};
use crate::settings::RESET_TOKEN_MAX_AGE;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pgrx::prelude::*;
use uuid::Uuid;

pub const PASSWORD_RESET: &str = "password_reset";
pub const EMAIL_VERIFICATION: &str = "email_verification";
pub const EMAIL_CHANGE: &str = "email_change";

/// A random token of 256 bits, URL-safe: for one-time tokens and invitations.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>().or_raise())
}

/// A new one-time token for `user`, issued for `email`. Earlier unused tokens of the same
/// purpose stop working.
pub fn issue(user: Uuid, purpose: &str, email: &str) -> String {
    let token = random_token();
    write(
        "UPDATE nile_auth.one_time_tokens SET used = now() WHERE user_id = $1 AND purpose = $2 AND used IS NULL",
        &[to_pg(user).into(), purpose.into()],
    );
    write(
        "INSERT INTO nile_auth.one_time_tokens (token_hash, user_id, purpose, email, expires)
         VALUES (sha256(convert_to($1, 'UTF8')), $2, $3, $4, now() + make_interval(secs => $5))",
        &[token.as_str().into(), to_pg(user).into(), purpose.into(), email.into(), f64::from(RESET_TOKEN_MAX_AGE.get()).into()],
    );
    token
}

/// Uses a one-time token of one of `purposes`: returns its user, email and purpose, or 28000 if
/// it is unknown, used, expired or of another purpose. The UPDATE makes use exactly-once even
/// under concurrency.
pub fn consume(token: &str, purposes: &[&str]) -> (Uuid, String, String) {
    let purposes: Vec<String> = purposes.iter().map(|p| (*p).to_owned()).collect();
    let row = Spi::connect_mut(|client| {
        let mut rows = client.update(
            "UPDATE nile_auth.one_time_tokens SET used = now()
              WHERE token_hash = sha256(convert_to($1, 'UTF8')) AND purpose = ANY ($2) AND used IS NULL AND expires > now()
             RETURNING user_id, email, purpose",
            Some(1),
            &[token.into(), purposes.into()],
        )?;
        rows.next()
            .map(|row| Ok::<_, pgrx::spi::Error>((row.get::<pgrx::Uuid>(1)?, row.get::<String>(2)?, row.get::<String>(3)?)))
            .transpose()
    })
    .or_raise();
    match row {
        Some((Some(user), Some(email), Some(purpose))) => (from_pg(user), email, purpose),
        _ => AuthError::InvalidToken.raise(),
    }
}

/// Voids every unused one-time token of `user`: when the address they were mailed to stops
/// being the account's (email change, deletion).
pub fn void_all(user: Uuid) {
    write("UPDATE nile_auth.one_time_tokens SET used = now() WHERE user_id = $1 AND used IS NULL", &[to_pg(user).into()]);
}
