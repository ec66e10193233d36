//! Creating a user: the email check, the password policy and the two rows (profile and
//! credentials). Shared by signup and by tenants that create their own users.

use crate::db::{read_one, to_pg, write};
use crate::errors::{AuthError, AuthResult, OrRaise};
use crate::passwords;
use crate::settings::MIN_PASSWORD_LENGTH;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

/// A deliberately plain check: one `@`, a non-empty local part, a dotted domain, no spaces,
/// control or invisible characters. The address is proven by email verification, not by a regex.
pub fn check_email(email: &str) -> AuthResult<()> {
    let malformed = || AuthError::InvalidParameter(format!("malformed email address: \"{}\"", email.escape_default()));
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control() || invisible(c)) {
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

/// Characters that show as nothing or reorder the text around them (zero-width and joiner
/// characters, bidi controls, the BOM, variation selectors, tags, blank look-alikes) or as
/// anything at all (private use): an address containing one looks exactly like another.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0x2800 | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        // private use: renders as whatever a font decides
        | 0xE000..=0xF8FF | 0xE0000..=0x10FFFF)
}

/// The form an email is stored and compared in: checked, then Unicode NFC, so an address typed
/// in another normal form (a precomposed é or e + combining accent) is the same address.
pub fn normalize_email(email: &str) -> AuthResult<String> {
    let nfc: String = email.nfc().collect();
    check_email(&nfc)?;
    Ok(nfc)
}

/// For lookups: the stored form of `email`, or the input itself when it could never have been
/// stored (then it matches nobody, which is the answer).
pub fn lookup_form(email: &str) -> String {
    normalize_email(email).unwrap_or_else(|_| email.to_owned())
}

/// Whether a live user other than `except` has `email` (in any letter case).
pub fn email_taken_by_other(email: &str, except: Option<Uuid>) -> bool {
    read_one::<bool>(
        "SELECT true FROM nile_auth.users WHERE lower(email) = lower($1) AND deleted IS NULL AND id IS DISTINCT FROM $2",
        &[email.into(), except.map(to_pg).into()],
    ) == Some(true)
}

pub fn min_password_chars() -> usize {
    MIN_PASSWORD_LENGTH.get().max(1) as usize
}

/// Creates a user with a password (the email in its stored form, see `normalize_email`). Used
/// by signup and by tenants that create their own users.
pub fn create_user(email: &str, password: &str, name: Option<&str>) -> Uuid {
    let email = normalize_email(email).or_raise();
    let email = email.as_str();
    passwords::check_password_policy(password, min_password_chars()).or_raise();
    if email_taken_by_other(email, None) {
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
    use super::{check_email, normalize_email};

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "Shaun.M+tag@Example.COM", "x@sub.domain.org"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in ["", "plain", "@b.co", "a@", "a@b", "a@b..co", "a b@c.de", "a@b@c.de", " a@b.co", "a@.co",
                    "a\u{200B}@b.co", "a@b\u{202E}oc.", "\u{FEFF}a@b.co", "a\u{2066}@b.co", "a\u{0007}@b.co"] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_address_in_two_normal_forms_is_one_address() {
        let precomposed = normalize_email("caf\u{E9}@b.co").unwrap();
        let combining = normalize_email("cafe\u{301}@b.co").unwrap();
        assert_eq!(precomposed, combining);
    }
}

