//! HS256 signing keys: a private table of 256-bit secrets, one current key for signing, older
//! keys verifying until retired.

use crate::errors::{AuthError, OrRaise};
use crate::tokens::SigningKey;
use pgrx::prelude::*;

/// The newest key that is not retired signs new tokens.
pub fn current_signing_key() -> SigningKey {
    crate::db::read_row(
        "SELECT kid, secret FROM nile_auth.signing_keys WHERE retired IS NULL ORDER BY created DESC LIMIT 1",
        &[],
        |row| Ok(SigningKey { kid: row.get(1)?.unwrap_or_default(), secret: row.get(2)?.unwrap_or_default() }),
    )
    .unwrap_or_else(|| {
        AuthError::ObjectNotInPrerequisiteState(
            "nile_auth has no active signing key: run nile_auth.rotate_signing_key()".into(),
        )
        .raise()
    })
}

/// The secret of a key that may still verify tokens, or `None` if the kid is unknown or retired.
/// Callers must hold the extension owner's rights (SECURITY DEFINER or `as_extension_owner`).
pub fn verifying_secret(kid: &str) -> Option<Vec<u8>> {
    crate::db::read_one_prepared::<Vec<u8>>(
        "SELECT secret FROM nile_auth.signing_keys WHERE kid = $1 AND retired IS NULL",
        &[kid.into()],
    )
}

/// Makes a new current signing key and returns its kid. Tokens signed with older keys keep
/// verifying until those keys are retired.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_signing_key() -> String {
    let kid = uuid::Uuid::now_v7().to_string();
    let secret = crate::random::bytes::<32>().or_raise().to_vec();
    crate::db::write(
        "INSERT INTO nile_auth.signing_keys (kid, secret) VALUES ($1, $2)",
        &[kid.as_str().into(), secret.into()],
    );
    kid
}

/// Retires a key: tokens it signed stop verifying. Retiring the last active key is refused,
/// since nothing could sign new tokens afterwards.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn retire_signing_key(kid: Option<&str>) -> bool {
    let kid = crate::errors::required(kid, "kid").or_raise();
    // Serialises key administration, so two sessions cannot retire the last two keys at once.
    crate::db::write("LOCK TABLE nile_auth.signing_keys IN SHARE ROW EXCLUSIVE MODE", &[]);
    let state = crate::db::read_row(
        "SELECT k.retired IS NOT NULL,
                (SELECT count(*) FROM nile_auth.signing_keys o WHERE o.kid <> k.kid AND o.retired IS NULL)
           FROM nile_auth.signing_keys k WHERE k.kid = $1",
        &[kid.into()],
        |row| Ok((row.get::<bool>(1)?, row.get::<i64>(2)?)),
    );
    let Some((retired, others_active)) = state else {
        AuthError::NotFound(format!("signing key \"{kid}\" does not exist")).raise();
    };
    if retired == Some(true) {
        return false;
    }
    if others_active.unwrap_or(0) == 0 {
        AuthError::ObjectNotInPrerequisiteState(
            "cannot retire the only active signing key: run nile_auth.rotate_signing_key() first".into(),
        )
        .raise();
    }
    crate::db::write("UPDATE nile_auth.signing_keys SET retired = now() WHERE kid = $1", &[kid.into()]);
    true
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn create_extension_makes_exactly_one_signing_key() {
        let (keys, active) = Spi::get_two::<i64, i64>(
            "SELECT count(*), count(*) FILTER (WHERE retired IS NULL AND octet_length(secret) = 32) FROM nile_auth.signing_keys",
        )
        .unwrap();
        assert_eq!((keys, active), (Some(1), Some(1)));
    }
}
