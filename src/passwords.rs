//! Password hashing with argon2id. Hashes are PHC strings, so the parameters travel with each
//! hash: verification reads them back, and raising the defaults never breaks old hashes.

use crate::errors::{AuthError, AuthResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

/// Longest password accepted, in bytes: argon2 is happy with more, but an unbounded input is a
/// cheap way to make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The hasher for new hashes: argon2id with the crate defaults (m=19 MiB, t=2, p=1), the OWASP
/// minimum.
fn current() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

pub fn check_password_policy(password: &str, min_chars: usize) -> AuthResult<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidParameter(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().count() < min_chars {
        return Err(AuthError::InvalidParameter(format!(
            "password must be at least {min_chars} characters"
        )));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> AuthResult<String> {
    let salt = crate::random::bytes::<16>()?;
    // Neither step can fail for a 16-byte salt and a password within MAX_PASSWORD_BYTES; the
    // mapping keeps a broken invariant an error instead of a panic.
    let internal = |_| AuthError::Internal("password hashing failed".into());
    let salt = SaltString::encode_b64(&salt).map_err(internal)?;
    Ok(current().hash_password(password.as_bytes(), &salt).map_err(internal)?.to_string())
}

/// Verifies against a stored PHC string using the parameters recorded in it. A malformed
/// stored hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// True when a stored hash was made with a different algorithm or weaker parameters than
/// today's defaults, so a good login should replace it.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return true };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else { return true };
    let want = Params::default();
    params.m_cost() < want.m_cost() || params.t_cost() < want.t_cost() || params.p_cost() < want.p_cost()
}

/// Verifying an unknown email against this hash costs the same as a real verification, so
/// response time does not reveal whether an email is registered.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("nile_auth dummy password").unwrap_or_default());
    let _ = verify_password(password, dummy);
}

/// The bare argon2id verification login performs, exposed so benchmarks can compare login
/// with it in the same process. Superuser only (see sql/finalize.sql): it is a CPU-cost oracle.
#[pgrx::pg_extern(name = "_argon2_verify", immutable, parallel_safe)]
fn argon2_verify_sql(password: &str, phc: &str) -> bool {
    verify_password(password, phc)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn round_trip_and_parameters_in_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn weaker_hash_still_verifies_and_is_flagged_for_upgrade() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let h = weak.hash_password(b"old password", &salt).unwrap().to_string();
        assert!(verify_password("old password", &h));
        assert!(needs_rehash(&h));
    }

    #[test]
    fn argon2i_is_flagged_for_upgrade() {
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let h = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password("pw", &h));
        assert!(needs_rehash(&h));
    }

    #[test]
    fn malformed_hash_verifies_nothing() {
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn policy_limits() {
        assert!(check_password_policy("short", 8).is_err());
        assert!(check_password_policy("long enough", 8).is_ok());
        assert!(check_password_policy(&"x".repeat(1025), 8).is_err());
        assert!(check_password_policy(&"x".repeat(1024), 8).is_ok());
        // characters, not bytes, count toward the minimum
        assert!(check_password_policy("éééééééé", 8).is_ok());
    }
}
