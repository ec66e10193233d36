//! Access tokens: JWTs signed with ES256, EdDSA (Ed25519) or HS256, with a `kid` header. Pure
//! functions; where the keys live and how verified tokens are cached is the business of `keys`
//! and `identity`.

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

/// The signing algorithms a key may have. Each key has exactly one, and a token is checked
/// only with the algorithm of the key its `kid` names (no algorithm confusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    EdDsa,
    Hs256,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Es256, Alg::EdDsa, Alg::Hs256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == name)
    }

    fn jwt(self) -> Algorithm {
        match self {
            Alg::Es256 => Algorithm::ES256,
            Alg::EdDsa => Algorithm::EdDSA,
            Alg::Hs256 => Algorithm::HS256,
        }
    }
}

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
    /// The session the token belongs to; it stops verifying when the session ends. Absent only
    /// on tokens minted by 0.1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// A database role for PostgREST (nile_auth.token_role_claim); not read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// A key that signs: its private material is an HS256 secret or a PKCS#8 document.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pub private: Vec<u8>,
}

/// A key that verifies: the HS256 secret, or the raw public key (the uncompressed P-256 point,
/// or the 32 bytes of an Ed25519 key).
#[derive(Clone)]
pub struct VerifyingKey {
    pub alg: Alg,
    pub material: Vec<u8>,
    /// For a retired key: when it stopped signing (Unix seconds). A token claiming to be issued
    /// later was not signed by us while the key was current.
    pub retired_at: Option<u64>,
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
    pub session: Option<Uuid>,
}

/// What a token is issued for.
pub struct Subject<'a> {
    pub user_id: Uuid,
    pub email: &'a str,
    pub tenant: Option<Uuid>,
    pub session: Option<Uuid>,
}

/// A signed token for `subject`, valid from `now` until `expires`, with a `role` claim when given.
pub fn issue(key: &SigningKey, subject: &Subject, audience: &str, now: u64, expires: u64, role: Option<&str>) -> AuthResult<String> {
    let header = Header { kid: Some(key.kid.clone()), ..Header::new(key.alg.jwt()) };
    let claims = Claims {
        sub: subject.user_id.to_string(),
        email: subject.email.to_owned(),
        iat: now,
        nbf: now,
        exp: expires,
        jti: Uuid::now_v7().to_string(),
        iss: ISSUER.to_owned(),
        aud: audience.to_owned(),
        tid: subject.tenant.map(|t| t.to_string()),
        sid: subject.session.map(|s| s.to_string()),
        role: role.map(str::to_owned),
    };
    let encoding = match key.alg {
        Alg::Hs256 => EncodingKey::from_secret(&key.private),
        Alg::Es256 => EncodingKey::from_ec_der(&key.private),
        Alg::EdDsa => EncodingKey::from_ed_der(&key.private),
    };
    // Fails only for a damaged private key; the message names nothing secret.
    jsonwebtoken::encode(&header, &claims, &encoding).map_err(|_| AuthError::Internal("token signing failed".into()))
}

/// The algorithm and `kid` of a token whose header is acceptable (a supported alg, no `crit`,
/// typ JWT if any), else `None`. Checked by hand because jsonwebtoken ignores header fields it
/// does not know, `crit` among them.
pub fn acceptable_header(token: &str) -> Option<(Alg, String)> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let alg = Alg::parse(header.get("alg")?.as_str()?)?;
    if header.contains_key("crit") {
        return None;
    }
    if let Some(typ) = header.get("typ") {
        if !typ.as_str()?.eq_ignore_ascii_case("JWT") {
            return None;
        }
    }
    Some((alg, header.get("kid")?.as_str()?.to_owned()))
}

/// The payload of a token, unverified: for `claims()`, after the token has been verified.
pub fn payload(token: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?).ok()
}

/// Verifies signature and claims with the key the token names. `key_for` returns a usable
/// (current or retired) key by kid. `now` is passed in so tests can move the clock.
pub fn verify(token: &str, audience: &str, now: u64, key_for: impl FnOnce(&str) -> Option<VerifyingKey>) -> Option<Verified> {
    let (alg, kid) = acceptable_header(token)?;
    let key = key_for(&kid)?;
    if key.alg != alg {
        return None;
    }
    let decoding = match alg {
        Alg::Hs256 => DecodingKey::from_secret(&key.material),
        Alg::Es256 => DecodingKey::from_ec_der(&key.material),
        Alg::EdDsa => DecodingKey::from_ed_der(&key.material),
    };
    let mut validation = Validation::new(alg.jwt());
    validation.leeway = LEEWAY_SECONDS;
    // exp and nbf are required, and checked below against `now` only, not the system clock:
    // a parallel worker must judge a token at the instant its leader did (`identity::verify`).
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &validation).ok()?.claims;
    if claims.exp + LEEWAY_SECONDS < now || claims.nbf > now + LEEWAY_SECONDS {
        return None;
    }
    if key.retired_at.is_some_and(|retired| claims.iat > retired + LEEWAY_SECONDS) {
        return None;
    }
    let user_id = Uuid::parse_str(&claims.sub).ok()?;
    let parse = |id: Option<String>| match id {
        Some(t) => Uuid::parse_str(&t).ok().map(Some),
        None => Some(None),
    };
    let tenant = parse(claims.tid)?;
    let session = parse(claims.sid)?;
    let jti_ms = Uuid::parse_str(&claims.jti).ok().and_then(|j| j.get_timestamp()).map(|ts| {
        let (secs, nanos) = ts.to_unix();
        secs * 1000 + u64::from(nanos) / 1_000_000
    });
    let issued_at_ms = jti_ms.unwrap_or(claims.iat.saturating_mul(1000));
    Some(Verified { user_id, issued_at_ms, expires_at: claims.exp, tenant, session })
}

/// New key material for `alg`: the private part (an HS256 secret of 256 bits, or a PKCS#8
/// document) and the raw public key (none for HS256).
pub fn generate(alg: Alg) -> AuthResult<(Vec<u8>, Option<Vec<u8>>)> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let failed = |_| AuthError::ObjectNotInPrerequisiteState("the operating system random source is unavailable".into());
    match alg {
        Alg::Hs256 => Ok((crate::random::bytes::<32>()?.to_vec(), None)),
        Alg::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(failed)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .map_err(|_| AuthError::Internal("generated key does not parse".into()))?;
            Ok((pkcs8.as_ref().to_vec(), Some(pair.public_key().as_ref().to_vec())))
        }
        Alg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| AuthError::Internal("generated key does not parse".into()))?;
            Ok((pkcs8.as_ref().to_vec(), Some(pair.public_key().as_ref().to_vec())))
        }
    }
}

/// The public key as an RFC 7517 JWK (RFC 7518 for P-256, RFC 8037 for Ed25519); `None` for
/// HS256, whose key is secret.
pub fn jwk(kid: &str, alg: Alg, public: &[u8]) -> Option<serde_json::Value> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    match alg {
        Alg::Hs256 => None,
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        Alg::Es256 => (public.len() == 65 && public[0] == 4).then(|| {
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&public[1..33]), "y": b64(&public[33..]),
                               "kid": kid, "alg": "ES256", "use": "sig"})
        }),
        Alg::EdDsa => (public.len() == 32).then(|| {
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(public), "kid": kid, "alg": "EdDSA", "use": "sig"})
        }),
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }
    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey { kid: kid.into(), alg: Alg::Hs256, private: vec![byte; 32] }
    }
    fn verifying(k: &SigningKey) -> VerifyingKey {
        VerifyingKey { alg: k.alg, material: k.private.clone(), retired_at: None }
    }
    fn lookup(k: &SigningKey) -> impl FnOnce(&str) -> Option<VerifyingKey> + '_ {
        move |kid| (kid == k.kid).then(|| verifying(k))
    }
    fn subject() -> Subject<'static> {
        Subject { user_id: Uuid::now_v7(), email: "a@b.co", tenant: None, session: None }
    }
    fn issue_for(k: &SigningKey, s: &Subject, aud: &str, at: u64, max_age: u64) -> String {
        issue(k, s, aud, at, at + max_age, None).unwrap()
    }
    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn issued_token_verifies() {
        let k = key("k1", 7);
        let id = Uuid::now_v7();
        let t = issue_for(&k, &Subject { user_id: id, email: "a@b.co", tenant: None, session: None }, "db", now(), 3600);
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
        let t = issue_for(&k, &Subject { user_id: Uuid::now_v7(), email: "a@b.co", tenant: Some(tenant), session: None }, "db", now(), 60);
        assert_eq!(verify(&t, "db", now(), lookup(&k)).unwrap().tenant, Some(tenant));
    }

    #[test]
    fn wrong_audience_key_or_expiry_is_rejected() {
        let k = key("k1", 7);
        let t = issue_for(&k, &subject(), "db", now(), 3600);
        assert!(verify(&t, "other_db", now(), lookup(&k)).is_none());
        assert!(verify(&t, "db", now(), lookup(&key("k1", 8))).is_none());
        assert!(verify(&t, "db", now(), lookup(&key("k2", 7))).is_none());
        assert!(verify(&t, "db", now() + 3600 + LEEWAY_SECONDS + 1, lookup(&k)).is_none());
        let old = issue_for(&k, &subject(), "db", now() - 7200, 3600);
        assert!(verify(&old, "db", now(), lookup(&k)).is_none());
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let k = key("k1", 7);
        let t = issue_for(&k, &subject(), "db", now(), 3600);
        let parts: Vec<&str> = t.split('.').collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = Uuid::now_v7().to_string().into();
        let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert!(verify(&forged, "db", now(), lookup(&k)).is_none());
    }

    #[test]
    fn alg_none_crit_and_garbage_are_rejected() {
        let k = key("k1", 7);
        let t = issue_for(&k, &subject(), "db", now(), 3600);
        let parts: Vec<&str> = t.split('.').collect();
        let none = b64(&serde_json::json!({"alg": "none", "kid": "k1"}));
        assert!(verify(&format!("{none}.{}.", parts[1]), "db", now(), lookup(&k)).is_none());
        let crit = b64(&serde_json::json!({"alg": "HS256", "kid": "k1", "crit": ["exp"]}));
        assert!(acceptable_header(&format!("{crit}.{}.{}", parts[1], parts[2])).is_none());
        let hs512 = b64(&serde_json::json!({"alg": "HS512", "kid": "k1"}));
        assert!(acceptable_header(&format!("{hs512}.{}.{}", parts[1], parts[2])).is_none());
        let no_kid = b64(&serde_json::json!({"alg": "HS256"}));
        assert!(acceptable_header(&format!("{no_kid}.{}.{}", parts[1], parts[2])).is_none());
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
        let t = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&k.private)).unwrap();
        assert!(verify(&t, "db", n, lookup(&k)).is_none());
    }

    fn asymmetric(alg: Alg) -> (SigningKey, VerifyingKey) {
        let (private, public) = generate(alg).unwrap();
        (SigningKey { kid: "a1".into(), alg, private }, VerifyingKey { alg, material: public.unwrap(), retired_at: None })
    }

    #[test]
    fn asymmetric_tokens_verify_with_the_public_key_only() {
        for alg in [Alg::Es256, Alg::EdDsa] {
            let (k, public) = asymmetric(alg);
            let session = Uuid::now_v7();
            let s = Subject { user_id: Uuid::now_v7(), email: "a@b.co", tenant: None, session: Some(session) };
            let t = issue(&k, &s, "db", now(), now() + 60, Some("web_user")).unwrap();
            let v = verify(&t, "db", now(), |_| Some(VerifyingKey { alg, material: public.material.clone(), retired_at: None }));
            assert_eq!(v.expect("verifies").session, Some(session), "{alg:?}");
            assert_eq!(payload(&t).unwrap()["role"], "web_user");
            // Another key of the same algorithm does not verify it.
            let (_, other) = asymmetric(alg);
            assert!(verify(&t, "db", now(), |_| Some(other)).is_none(), "{alg:?}");
            assert!(jwk("a1", alg, &public.material).is_some());
        }
    }

    #[test]
    fn a_token_is_checked_only_with_its_keys_algorithm() {
        // An ES256 token presented for an HS256 key (or the reverse) never verifies, whatever
        // bytes the key holds: the header's alg must be the key's.
        let (k, public) = asymmetric(Alg::Es256);
        let t = issue(&k, &subject(), "db", now(), now() + 60, None).unwrap();
        assert!(verify(&t, "db", now(), |_| Some(VerifyingKey { alg: Alg::Hs256, material: public.material.clone(), retired_at: None })).is_none());
        // HS256 signed with the public key bytes as the secret: the classic confusion attack.
        let confused = issue(&SigningKey { kid: "a1".into(), alg: Alg::Hs256, private: public.material.clone() }, &subject(), "db", now(), now() + 60, None).unwrap();
        assert!(verify(&confused, "db", now(), |_| Some(VerifyingKey { alg: Alg::Es256, material: public.material, retired_at: None })).is_none());
    }

    #[test]
    fn a_retired_key_verifies_only_tokens_issued_before_it_retired() {
        let k = key("k1", 7);
        let t = issue_for(&k, &subject(), "db", now(), 3600);
        let retired = |at| move |_: &str| Some(VerifyingKey { alg: Alg::Hs256, material: vec![7; 32], retired_at: Some(at) });
        assert!(verify(&t, "db", now(), retired(now())).is_some());
        assert!(verify(&t, "db", now(), retired(now() - 60)).is_none());
    }
}
