//! Signing keys: a private table of key pairs (ES256, EdDSA) and HS256 secrets, each in one
//! state. `standby`: published in jwks(), not signing yet, so verifiers can fetch it before its
//! first token; `current`: signs (exactly one); `retired`: no longer signs, still verifies the
//! tokens it signed until they expire; `revoked`: verifies nothing.

use crate::db::{clock_now, read_all, read_row, read_row_prepared, write};
use crate::errors::{AuthError, OrRaise, required};
use crate::tokens::{Alg, SigningKey, VerifyingKey};
use pgrx::JsonB;
use pgrx::prelude::*;

/// What new installations sign with, and what rotation picks when nothing says otherwise.
/// ES256 rather than EdDSA: every JWT library, API gateway and Web Crypto verifies it (Ed25519
/// support is still missing from some), and it is what Supabase's asymmetric keys use.
pub const DEFAULT_ALG: Alg = Alg::Es256;
/// How long after its retirement a key still verifies tokens that claim a later issue time:
/// logins that read the key just before a rotation committed.
const RETIRE_GRACE_SECONDS: u64 = 60;

/// The key that signs new tokens.
pub fn current_signing_key() -> SigningKey {
    read_row_prepared(
        "SELECT kid, alg, secret FROM nile_auth.signing_keys WHERE state = 'current'",
        &[],
        |row| {
            let kid = row.get::<String>(1)?.unwrap_or_default();
            let alg = row.get::<String>(2)?.as_deref().and_then(Alg::parse);
            let private = row.get::<Vec<u8>>(3)?.unwrap_or_default();
            Ok(alg.map(|alg| SigningKey { kid, alg, private }))
        },
    )
    .flatten()
    .unwrap_or_else(|| {
        AuthError::ObjectNotInPrerequisiteState("nile_auth has no current signing key: run nile_auth.rotate_signing_key()".into())
            .raise()
    })
}

/// The verifying key `kid` from 0.1.0's table (HS256 secrets, verifying while `retired` is
/// NULL), between a package upgrade and ALTER EXTENSION UPDATE; `identity::verify` reads the
/// current table. Callers hold the extension owner's rights.
pub fn legacy_verifying_key(kid: &str) -> Option<VerifyingKey> {
    read_row_prepared(
        "SELECT secret FROM nile_auth.signing_keys WHERE kid = $1 AND retired IS NULL",
        &[kid.into()],
        |row| row.get::<Vec<u8>>(1),
    )
    .flatten()
    .map(|material| VerifyingKey { alg: Alg::Hs256, material, retired_at: None })
}

/// When a key retired at `retired` (a timestamptz, microseconds since 2000) stops verifying
/// tokens issued after it: Unix seconds, rounded, plus the grace.
pub fn retired_grace_end(retired: i64) -> u64 {
    const POSTGRES_EPOCH_SECONDS: i64 = 946_684_800;
    let seconds = (retired + 500_000).div_euclid(1_000_000) + POSTGRES_EPOCH_SECONDS;
    seconds.max(0) as u64 + RETIRE_GRACE_SECONDS
}

/// For a row of `probe::SIGNING_KEYS`: `Some` if the key still verifies (current, or retired),
/// with when a retired key's grace ends (`retired_grace_end`).
pub fn verifies(row: &crate::probe::Row) -> Option<Option<u64>> {
    let state = row.get::<String>(1)?;
    if state != "current" && state != "retired" {
        return None;
    }
    Some((state == "retired").then(|| row.get::<i64>(4)).flatten().map(retired_grace_end))
}

fn parse_alg(alg: &str) -> Alg {
    Alg::parse(alg).unwrap_or_else(|| {
        AuthError::InvalidParameter(format!("unknown signing algorithm \"{alg}\": use ES256, EdDSA or HS256")).raise()
    })
}

/// Stores a new key of `alg` in `state` and returns its kid (the key it replaces retires: the
/// trigger replace_signing_key, sql/finalize.sql).
fn add_key(alg: Alg, state: &str) -> String {
    let kid = uuid::Uuid::now_v7().to_string();
    let (private, public) = crate::tokens::generate(alg).or_raise();
    write(
        "INSERT INTO nile_auth.signing_keys (kid, alg, secret, public_key, state, activated)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'current' THEN $6 END)",
        &[kid.as_str().into(), alg.as_str().into(), private.into(), public.into(), state.into(), clock_now().into()],
    );
    kid
}

/// Serialises key administration: two rotations, or a rotation and a revocation, never
/// interleave (the one-current and one-standby indexes would refuse the loser anyway).
fn lock_keys() {
    write("LOCK TABLE nile_auth.signing_keys IN SHARE ROW EXCLUSIVE MODE", &[]);
}

/// For CREATE EXTENSION and upgrade scripts: a new current or standby key. Not granted to anyone.
#[pg_extern(security_definer, volatile, name = "_add_signing_key")]
#[search_path(pg_catalog, pg_temp)]
fn add_signing_key(alg: Option<&str>, state: Option<&str>) -> String {
    let alg = parse_alg(required(alg, "alg").or_raise());
    let state = required(state, "state").or_raise();
    if state != "current" && state != "standby" {
        AuthError::InvalidParameter("a new key is current or standby".into()).raise();
    }
    lock_keys();
    add_key(alg, state)
}

/// Promotes the standby key to current (the current one retires: its tokens keep verifying
/// until they expire) and makes a new standby of `alg`; NULL keeps the algorithm of the key
/// now current. Without a standby (one was revoked), a new key of `alg` (NULL: ES256) becomes
/// current at once. Returns the kid now signing. (A Rust name of its own: 0.1.0's
/// rotate_signing_key() took no argument, and its symbol must not be handed one.)
#[pg_extern(security_definer, volatile, name = "rotate_signing_key")]
#[search_path(pg_catalog, pg_temp)]
fn rotate_signing_key_to(alg: default!(Option<&str>, "NULL")) -> String {
    let asked = alg.map(parse_alg);
    lock_keys();
    let at = clock_now();
    write("UPDATE nile_auth.signing_keys SET state = 'retired', retired = $1 WHERE state = 'current'", &[at.into()]);
    let promoted = crate::db::write_returning(
        "UPDATE nile_auth.signing_keys SET state = 'current', activated = $1
          WHERE state = 'standby' RETURNING kid, alg",
        &[at.into()],
        |row| Ok((row.get::<String>(1)?, row.get::<String>(2)?)),
    );
    let (kid, current_alg) = match promoted {
        Some((Some(kid), Some(alg))) => (kid, parse_alg(&alg)),
        _ => {
            let alg = asked.unwrap_or(DEFAULT_ALG);
            (add_key(alg, "current"), alg)
        }
    };
    add_key(asked.unwrap_or(current_alg), "standby");
    crate::audit::record("signing_key.rotated", None, None, Some(&kid), serde_json::json!({}));
    kid
}

/// Revokes a key: tokens it signed stop verifying in every backend at their next transaction,
/// and jwks() no longer publishes it. The current key cannot be revoked (55000): rotate first,
/// in the same transaction when it leaked. False when it was already revoked.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_signing_key(kid: Option<&str>) -> bool {
    let kid = required(kid, "kid").or_raise();
    lock_keys();
    let state = read_row("SELECT state FROM nile_auth.signing_keys WHERE kid = $1", &[kid.into()], |row| row.get::<String>(1))
        .flatten()
        .unwrap_or_else(|| AuthError::NotFound(format!("signing key \"{kid}\" does not exist")).raise());
    match state.as_str() {
        "revoked" => false,
        "current" => AuthError::ObjectNotInPrerequisiteState(
            "cannot revoke the current signing key: run nile_auth.rotate_signing_key() first".into(),
        )
        .raise(),
        _ => {
            write(
                "UPDATE nile_auth.signing_keys SET state = 'revoked', revoked = $2, retired = COALESCE(retired, $2) WHERE kid = $1",
                &[kid.into(), clock_now().into()],
            );
            crate::audit::record("signing_key.revoked", None, None, Some(kid), serde_json::json!({"was": state}));
            true
        }
    }
}

/// Every key, newest first, without key material: for key administrators.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_signing_keys() -> SetOfIterator<'static, JsonB> {
    SetOfIterator::new(read_all::<JsonB>(
        "SELECT jsonb_build_object('kid', kid, 'alg', alg, 'state', state, 'created', created,
                                   'activated', activated, 'retired', retired, 'revoked', revoked)
           FROM nile_auth.signing_keys ORDER BY created DESC, kid",
        &[],
    ))
}

/// The public keys as an RFC 7517 JWK Set: the current key, the standby, and retired keys
/// while tokens they signed may still be unexpired (nile_auth.token_max_age after retiring).
/// HS256 keys are secret and never published. For anyone: app servers, gateways, PostgREST.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn jwks() -> JsonB {
    let max_age = f64::from(crate::settings::TOKEN_MAX_AGE.get()) + RETIRE_GRACE_SECONDS as f64;
    let keys = Spi::connect(|client| {
        client
            .select(
                "SELECT kid, alg, public_key FROM nile_auth.signing_keys
                  WHERE public_key IS NOT NULL
                    AND (state IN ('current', 'standby')
                         OR (state = 'retired' AND retired > now() - make_interval(secs => $1)))
                  ORDER BY array_position(ARRAY['current', 'standby', 'retired'], state), created DESC",
                None,
                &[max_age.into()],
            )?
            .map(|row| Ok((row.get::<String>(1)?, row.get::<String>(2)?, row.get::<Vec<u8>>(3)?)))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .or_raise();
    let keys: Vec<serde_json::Value> = keys
        .into_iter()
        .filter_map(|(kid, alg, public)| crate::tokens::jwk(&kid?, Alg::parse(&alg?)?, &public?))
        .collect();
    JsonB(serde_json::json!({ "keys": keys }))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn create_extension_makes_a_current_and_a_standby_es256_key() {
        let states = Spi::get_one::<String>(
            "SELECT string_agg(alg || ':' || state, ',' ORDER BY state) FROM nile_auth.signing_keys",
        )
        .unwrap();
        assert_eq!(states.as_deref(), Some("ES256:current,ES256:standby"));
    }

    #[pg_test]
    fn jwks_publishes_current_and_standby_without_private_parts() {
        let jwks = Spi::get_one::<pgrx::JsonB>("SELECT nile_auth.jwks()").unwrap().unwrap().0;
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for k in keys {
            assert_eq!((k["kty"].as_str(), k["crv"].as_str(), k["use"].as_str()), (Some("EC"), Some("P-256"), Some("sig")));
            assert!(k.get("d").is_none());
        }
    }
}
