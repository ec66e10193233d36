//! Creating a user: the email check, the password policy and the two rows (profile and
//! credentials). Shared by signup and by tenants that create their own users.

use crate::db::{read_one, to_pg, write};
use crate::errors::{AuthError, AuthResult, OrRaise};
use crate::passwords;
use crate::settings::MIN_PASSWORD_LENGTH;
use uuid::Uuid;

/// A deliberately plain check: one `@`, a non-empty local part, a dotted domain, no spaces. The
/// address is proven by email verification, not by a regex.
pub fn check_email(email: &str) -> AuthResult<()> {
    let malformed = || AuthError::InvalidParameter(format!("malformed email address: \"{email}\""));
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed());
    }
    let (local, domain) = email.split_once('@').ok_or_else(malformed)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty());
    if local.is_empty() || !domain_ok {
        return Err(malformed());
    }
    Ok(())
}

pub fn min_password_chars() -> usize {
    MIN_PASSWORD_LENGTH.get().max(1) as usize
}

/// Creates a user with a password. Used by signup and (later) by tenant admins.
pub fn create_user(email: &str, password: &str, name: Option<&str>) -> Uuid {
    check_email(email).or_raise();
    passwords::check_password_policy(password, min_password_chars()).or_raise();
    let taken = read_one::<bool>(
        "SELECT true FROM nile_auth.users WHERE lower(email) = lower($1) AND deleted IS NULL",
        &[email.into()],
    );
    if taken == Some(true) {
        AuthError::EmailTaken.raise();
    }
    let user_id = Uuid::now_v7();
    let hash = passwords::hash_password(password).or_raise();
    write(
        "INSERT INTO nile_auth.users (id, email, name) VALUES ($1, $2, $3)",
        &[to_pg(user_id).into(), email.into(), name.into()],
    );
    write(
        "INSERT INTO nile_auth.credentials (user_id, password_hash) VALUES ($1, $2)",
        &[to_pg(user_id).into(), hash.into()],
    );
    user_id
}

#[cfg(test)]
mod unit {
    use super::check_email;

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "Shaun.M+tag@Example.COM", "x@sub.domain.org"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in ["", "plain", "@b.co", "a@", "a@b", "a@b..co", "a b@c.de", "a@b@c.de", " a@b.co", "a@.co"] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}

