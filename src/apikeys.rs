//! Per-user API keys (Nexla's per-user and per-membership keys). The secret is shown once at
//! creation; only its SHA-256 is stored, with a short prefix to recognise it in listings. A key
//! bound to a tenant mints tokens limited to that tenant.

use crate::audit::record;
use crate::db::{from_pg, read_all, read_one, read_row, to_pg, write, write_returning};
use crate::errors::{AuthError, OrRaise, required};
use crate::identity::require_verified;
use crate::caller::{Caller, caller_and_scope};
use crate::tenancy::context::access;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pgrx::JsonB;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use serde_json::json;

/// Recognisable in logs and secret scanners.
const KEY_PREFIX: &str = "nak_";
/// Characters of the key kept in clear for listings: the marker and 8 random characters.
const SHOWN_PREFIX_LEN: usize = KEY_PREFIX.len() + 8;

const KEY_JSON: &str = "jsonb_build_object('id', id, 'name', name, 'prefix', prefix, 'tenantId', tenant_id,
        'created', created, 'expires', expires, 'revoked', revoked, 'lastUsed', last_used)";

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn create_api_key(
    name: Option<&str>,
    tenant_id: default!(Option<pgrx::Uuid>, "NULL"),
    expires_in: default!(Option<Interval>, "NULL"),
) -> JsonB {
    let name = required(name, "name").or_raise();
    if name.trim().is_empty() {
        AuthError::InvalidParameter("API key name must not be empty".into()).raise();
    }
    let verified = require_verified().or_raise();
    let user = verified.user_id;
    // A token limited to one tenant mints keys for that tenant only, never broader.
    let tenant = match (tenant_id.map(from_pg), verified.tenant) {
        (Some(asked), Some(scope)) if asked != scope => AuthError::scoped(scope).raise(),
        (asked, scope) => asked.or(scope),
    };
    if let Some(tenant) = tenant {
        access(tenant); // P0002 unless the user is a member
    }
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>().or_raise()));
    let row = Spi::connect_mut(|client| {
        let mut rows = client.update(
            &format!(
                "INSERT INTO nile_auth.api_keys (user_id, tenant_id, name, prefix, key_hash, expires)
                 SELECT $1, $2, $3, $4, sha256(convert_to($5, 'UTF8')), now() + $6
                  WHERE $6 IS NULL OR now() + $6 > now()
                 RETURNING id"
            ),
            Some(1),
            &[
                to_pg(user).into(),
                tenant.map(to_pg).into(),
                name.into(),
                key[..SHOWN_PREFIX_LEN].into(),
                key.as_str().into(),
                expires_in.into(),
            ],
        )?;
        rows.next().map(|r| r.get::<pgrx::Uuid>(1)).transpose()
    })
    .or_raise();
    let Some(Some(id)) = row else {
        AuthError::InvalidParameter("expires_in must be a positive interval".into()).raise();
    };
    // Read back, not RETURNING: Citus allows no function there.
    let JsonB(mut json) = read_one::<JsonB>(&format!("SELECT {KEY_JSON} FROM nile_auth.api_keys WHERE id = $1"), &[id.into()])
        .unwrap_or_else(|| AuthError::Internal("API key not stored".into()).raise());
    record("api_key.created", Some(user), tenant, Some(&from_pg(id).to_string()), json!({"name": name}));
    json["key"] = key.into();
    JsonB(json)
}

/// The current user's keys, without secrets (with a token limited to one tenant: that tenant's).
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_api_keys() -> SetOfIterator<'static, JsonB> {
    let verified = require_verified().or_raise();
    SetOfIterator::new(read_all::<JsonB>(
        &format!(
            "SELECT {KEY_JSON} FROM nile_auth.api_keys
              WHERE user_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) ORDER BY created, id"
        ),
        &[to_pg(verified.user_id).into(), verified.tenant.map(to_pg).into()],
    ))
}

/// Revokes a key: it logs in no more, and the sessions it opened end (their tokens stop
/// verifying). Users revoke their own keys; the trusted backend any.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_api_key(id: Option<pgrx::Uuid>) -> bool {
    let id = from_pg(required(id, "id").or_raise());
    let (actor, scope) = caller_and_scope().or_raise();
    let owner = read_row(
        "SELECT user_id, tenant_id FROM nile_auth.api_keys WHERE id = $1",
        &[to_pg(id).into()],
        |row| Ok((row.get::<pgrx::Uuid>(1)?.map(from_pg), row.get::<pgrx::Uuid>(2)?.map(from_pg))),
    );
    let (owner, tenant) = match (owner, actor) {
        (Some((Some(owner), tenant)), Caller::TrustedBackend) => (owner, tenant),
        (Some((Some(owner), tenant)), Caller::User(me)) if me == owner && (scope.is_none() || tenant == scope) => (owner, tenant),
        _ => AuthError::NotFound(format!("API key {id} not found")).raise(),
    };
    write("UPDATE nile_auth.api_keys SET revoked = now() WHERE id = $1 AND revoked IS NULL", &[to_pg(id).into()]);
    crate::sessions::end_for_api_key(id);
    record("api_key.revoked", actor.user(), tenant, Some(&id.to_string()), json!({"owner": owner}));
    true
}

/// A session for the key's user, limited to the key's tenant when it has one:
/// `{"id", "token", "refreshToken", "sessionId"}` as from login. 28P01 for an unknown, revoked or expired key, a
/// deactivated or locked user, or a tenant the user has left.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn login_with_api_key(key: Option<&str>) -> JsonB {
    let key = required(key, "key").or_raise();
    crate::lockout::require_schema();
    let row = read_row(
        "SELECT k.id, k.user_id, u.email, k.tenant_id
           FROM nile_auth.api_keys k
           JOIN nile_auth.users u ON u.id = k.user_id
           JOIN nile_auth.credentials c ON c.user_id = k.user_id
          WHERE k.key_hash = sha256(convert_to($1, 'UTF8'))
            AND k.revoked IS NULL AND (k.expires IS NULL OR k.expires > now())
            AND u.deleted IS NULL AND u.deactivated IS NULL
            AND (c.locked_until IS NULL OR c.locked_until <= now())
            AND NOT EXISTS (SELECT FROM nile_auth.login_failures f
                             WHERE f.account = k.user_id AND f.locked_until > now())
            AND (k.tenant_id IS NULL OR EXISTS (
                  SELECT FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
                   WHERE tu.tenant_id = k.tenant_id AND tu.user_id = k.user_id
                     AND tu.deleted IS NULL AND t.deleted IS NULL))",
        &[key.into()],
        |row| {
            Ok((
                row.get::<pgrx::Uuid>(1)?.map(from_pg),
                row.get::<pgrx::Uuid>(2)?.map(from_pg),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<pgrx::Uuid>(4)?.map(from_pg),
            ))
        },
    );
    let Some((Some(key_id), Some(user_id), email, tenant)) = row else {
        AuthError::InvalidApiKey.raise();
    };
    // The key is re-read under its row lock: a revocation that committed since the lookup
    // (which then ended the key's sessions) must not be followed by a new one.
    let still_live = write_returning(
        "UPDATE nile_auth.api_keys SET last_used = now() WHERE id = $1 AND revoked IS NULL RETURNING true",
        &[to_pg(key_id).into()],
        |row| row.get::<bool>(1),
    )
    .flatten()
    .unwrap_or(false);
    if !still_live || !crate::sessions::still_valid(user_id) {
        AuthError::InvalidApiKey.raise();
    }
    record("login.api_key", Some(user_id), tenant, Some(&user_id.to_string()), json!({"keyId": key_id}));
    crate::accounts::signed_in(user_id, &email, tenant, Some(key_id))
}
