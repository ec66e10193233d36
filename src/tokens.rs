//! Access tokens: HS256 JWTs with a `kid` header. Pure functions; where the keys live and how
//! verified tokens are cached is the business of `keys` and `identity`.

use crate::errors::{AuthError, AuthResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUER: &str = "nile_auth";
/// Clock leeway for exp/nbf. Tokens are minted and checked against the same database clock, so
/// only a small allowance (for replicas with a drifting clock) is needed; the contract caps it at 30 s.
pub const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    email: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    iss: String,
    aud: String,
    /// Present on tokens from API keys bound to a tenant: the token is good for that tenant only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tid: Option<String>,
}

pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub user_id: Uuid,
    /// Milliseconds since the epoch: from the UUIDv7 `jti`, so a token can be told apart from a
    /// password change in the same second; `iat` * 1000 for any other `jti`.
    pub issued_at_ms: u64,
    pub expires_at: u64,
    pub tenant: Option<Uuid>,
}

/// What a token is issued for.
pub struct Subject<'a> {
    pub user_id: Uuid,
    pub email: &'a str,
    pub tenant: Option<Uuid>,
}

pub fn issue(key: &SigningKey, subject: &Subject, audience: &str, now: u64, max_age: u64) -> AuthResult<String> {
    let header = Header { kid: Some(key.kid.clone()), ..Header::new(Algorithm::HS256) };
    let claims = Claims {
        sub: subject.user_id.to_string(),
        email: subject.email.to_owned(),
        iat: now,
        nbf: now,
        exp: now + max_age,
        jti: Uuid::now_v7().to_string(),
        iss: ISSUER.to_owned(),
        aud: audience.to_owned(),
        tid: subject.tenant.map(|t| t.to_string()),
    };
    // Serialising a struct of strings and integers with an HMAC key does not fail in practice.
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
        .map_err(|_| AuthError::Internal("token encoding failed".into()))
}

/// The `kid` of a token whose header is acceptable (alg HS256, no `crit`), else `None`.
/// Checked by hand because jsonwebtoken ignores header fields it does not know, `crit` among them.
pub fn acceptable_kid(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" || header.contains_key("crit") {
        return None;
    }
    if let Some(typ) = header.get("typ") {
        if !typ.as_str()?.eq_ignore_ascii_case("JWT") {
            return None;
        }
    }
    Some(header.get("kid")?.as_str()?.to_owned())
}

/// Verifies signature and claims with the key the token names. `secret_for` returns the secret
/// of a usable (known, not retired) key. `now` is passed in so tests can move the clock.
pub fn verify(token: &str, audience: &str, now: u64, secret_for: impl FnOnce(&str) -> Option<Vec<u8>>) -> Option<Verified> {
    let kid = acceptable_kid(token)?;
    let secret = secret_for(&kid)?;

    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    // jsonwebtoken checks exp/nbf against the system clock; we check against `now` below as well,
    // which is what lets tests move time.
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&secret), &validation).ok()?;
    let claims = data.claims;
    if claims.exp + LEEWAY_SECONDS < now || claims.nbf > now + LEEWAY_SECONDS {
        return None;
    }
    let user_id = Uuid::parse_str(&claims.sub).ok()?;
    let tenant = match claims.tid {
        Some(t) => Some(Uuid::parse_str(&t).ok()?),
        None => None,
    };
    let jti_ms = Uuid::parse_str(&claims.jti).ok().and_then(|j| j.get_timestamp()).map(|ts| {
        let (secs, nanos) = ts.to_unix();
        secs * 1000 + u64::from(nanos) / 1_000_000
    });
    let issued_at_ms = jti_ms.unwrap_or(claims.iat.saturating_mul(1000));
    Some(Verified { user_id, issued_at_ms, expires_at: claims.exp, tenant })
}

#[cfg(test)]
mod unit {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }
    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey { kid: kid.into(), secret: vec![byte; 32] }
    }
    fn lookup(k: &SigningKey) -> impl FnOnce(&str) -> Option<Vec<u8>> + '_ {
        move |kid| (kid == k.kid).then(|| k.secret.clone())
    }
    fn subject() -> Subject<'static> {
        Subject { user_id: Uuid::now_v7(), email: "a@b.co", tenant: None }
    }
    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn issued_token_verifies() {
        let k = key("k1", 7);
        let id = Uuid::now_v7();
        let t = issue(&k, &Subject { user_id: id, email: "a@b.co", tenant: None }, "db", now(), 3600).unwrap();
        let v = verify(&t, "db", now(), lookup(&k)).expect("verifies");
        assert_eq!(v.user_id, id);
        assert!(v.expires_at * 1000 >= v.issued_at_ms + 3_599_000);
        // jti carries the issue time to the millisecond
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(v.issued_at_ms <= ms && ms - v.issued_at_ms < 60_000, "{} vs {ms}", v.issued_at_ms);
        assert_eq!(v.tenant, None);
    }

    #[test]
    fn tenant_scope_round_trips() {
        let k = key("k1", 7);
        let tenant = Uuid::now_v7();
        let t = issue(&k, &Subject { user_id: Uuid::now_v7(), email: "a@b.co", tenant: Some(tenant) }, "db", now(), 60).unwrap();
        assert_eq!(verify(&t, "db", now(), lookup(&k)).unwrap().tenant, Some(tenant));
    }

    #[test]
    fn wrong_audience_key_or_expiry_is_rejected() {
        let k = key("k1", 7);
        let t = issue(&k, &subject(), "db", now(), 3600).unwrap();
        assert!(verify(&t, "other_db", now(), lookup(&k)).is_none());
        assert!(verify(&t, "db", now(), lookup(&key("k1", 8))).is_none());
        assert!(verify(&t, "db", now(), lookup(&key("k2", 7))).is_none());
        assert!(verify(&t, "db", now() + 3600 + LEEWAY_SECONDS + 1, lookup(&k)).is_none());
        let old = issue(&k, &subject(), "db", now() - 7200, 3600).unwrap();
        assert!(verify(&old, "db", now(), lookup(&k)).is_none());
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let k = key("k1", 7);
        let t = issue(&k, &subject(), "db", now(), 3600).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = Uuid::now_v7().to_string().into();
        let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert!(verify(&forged, "db", now(), lookup(&k)).is_none());
    }

    #[test]
    fn alg_none_crit_and_garbage_are_rejected() {
        let k = key("k1", 7);
        let t = issue(&k, &subject(), "db", now(), 3600).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let none = b64(&serde_json::json!({"alg": "none", "kid": "k1"}));
        assert!(verify(&format!("{none}.{}.", parts[1]), "db", now(), lookup(&k)).is_none());
        let crit = b64(&serde_json::json!({"alg": "HS256", "kid": "k1", "crit": ["exp"]}));
        assert!(acceptable_kid(&format!("{crit}.{}.{}", parts[1], parts[2])).is_none());
        let hs512 = b64(&serde_json::json!({"alg": "HS512", "kid": "k1"}));
        assert!(acceptable_kid(&format!("{hs512}.{}.{}", parts[1], parts[2])).is_none());
        let no_kid = b64(&serde_json::json!({"alg": "HS256"}));
        assert!(acceptable_kid(&format!("{no_kid}.{}.{}", parts[1], parts[2])).is_none());
        assert!(verify("garbage", "db", now(), lookup(&k)).is_none());
        assert!(verify("a.b.c.d", "db", now(), lookup(&k)).is_none());
        assert!(verify("", "db", now(), lookup(&k)).is_none());
    }

    #[test]
    fn missing_required_claim_is_rejected() {
        let k = key("k1", 7);
        let header = Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) };
        let n = now();
        let claims = serde_json::json!({"sub": Uuid::now_v7().to_string(), "email": "a@b.co", "iat": n,
            "exp": n + 60, "jti": "j", "iss": ISSUER, "aud": "db"}); // no nbf
        let t = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&k.secret)).unwrap();
        assert!(verify(&t, "db", n, lookup(&k)).is_none());
    }
}
