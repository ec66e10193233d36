//! Who the session is: a token verified against the signing keys, the user's state and its
//! session's, kept in the setting `nile.auth_token`. Identity is always derived from the token; nothing a client
//! types into a setting is believed without verification.
//!
//! Verification and its per-backend caches are in `verify`; what reaches Citus workers in place
//! of the token, in `forwarded`.

use crate::db::{read_one, read_one_prepared, to_pg};
use crate::errors::{AuthError, AuthResult, OrRaise, required};
use crate::settings::{AUTH_TOKEN, set_session_setting, with_session_setting_strict};
use crate::tokens::{self, Verified};
use forwarded::FORWARDED_IDENTITY;
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};
use std::cell::RefCell;
use uuid::Uuid;

pub mod forwarded;
mod verify;
pub use verify::verify_token;

thread_local! {
    static DATABASE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The audience of tokens minted here: the current database's name.
pub fn audience() -> String {
    DATABASE.with_borrow_mut(|db| {
        db.get_or_insert_with(|| {
            // SAFETY: MyDatabaseId is set for any backend that can run SQL.
            let name = unsafe { pg_sys::get_database_name(pg_sys::MyDatabaseId) };
            if name.is_null() {
                String::new()
            } else {
                unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned()
            }
        })
        .clone()
    })
}

/// Inside a security-restricted operation (ANALYZE, VACUUM, REINDEX, CLUSTER, REFRESH
/// MATERIALIZED VIEW, CREATE INDEX evaluating a table owner's expressions), the code running is
/// the table owner's, while the session may be a superuser's, a backend's or a user's. No
/// identity and no trust hold there: tokens are ignored and no role is a backend (`caller`).
pub fn in_maintenance() -> bool {
    // SAFETY: reads backend-local state.
    unsafe { pg_sys::InSecurityRestrictedOperation() }
}

/// The verified token of this session or transaction, or `None` (no token, or one that does
/// not verify): for policies, which see no identity where functions raise 28000.
pub fn current_identity() -> Option<Verified> {
    session_identity().ok().flatten()
}

/// The token in `nile.auth_token` (or, without one, the identity forwarded to a Citus worker):
/// `Ok(None)` when there is none, its claims when it verifies, and 28000 when one is present
/// but does not verify (never the same as no token; an empty value set on purpose is present).
pub fn session_identity() -> AuthResult<Option<Verified>> {
    if in_maintenance() {
        return Ok(None);
    }
    let checked = |verified: Option<Verified>| verified.ok_or(AuthError::InvalidToken);
    match with_session_setting_strict(AUTH_TOKEN, |token| token.map(|t| checked(verify_token(t)))) {
        Some(token) => token.map(Some),
        None => with_session_setting_strict(FORWARDED_IDENTITY, |f| f.map(|f| checked(verify::verify_forwarded(f))).transpose()),
    }
}

/// Makes `token` the identity of the session or, with `is_local`, of the transaction. Where
/// Citus forwards a transaction's settings to the workers, the token is set on this node only,
/// and the workers get a forwarded identity instead (`forwarded`); one that cannot be made is
/// forwarded empty, which verifies nothing there.
pub fn set_token(token: &str, is_local: bool) {
    if !(is_local && crate::settings::citus_forwards_set_local()) {
        set_session_setting(AUTH_TOKEN, token, is_local);
        return;
    }
    crate::settings::set_here(AUTH_TOKEN, token, true);
    // Only a token that verifies here is vouched for to the workers.
    let forwarded = verify_token(token).and_then(|_| forwarded::forward(token)).unwrap_or_default();
    forwarded::ours(|| set_session_setting(FORWARDED_IDENTITY, &forwarded, true));
}

/// The verified user of this session or transaction, or `None`.
pub fn current_user_id() -> Option<Uuid> {
    current_identity().map(|v| v.user_id)
}

/// The verified token acting; 28000 without a token or with one that does not verify.
pub fn require_verified() -> AuthResult<Verified> {
    session_identity()?.ok_or(AuthError::NotAuthenticated)
}

/// The verified user acting on their whole account (profile, password, email): 42501 for a
/// token limited to one tenant, which may do nothing outside it.
pub fn require_account_user() -> AuthResult<Uuid> {
    let verified = require_verified()?;
    match verified.tenant {
        Some(scope) => Err(AuthError::scoped(scope)),
        None => Ok(verified.user_id),
    }
}

/// The one tenant the session's token is limited to, or NULL: for the built-in tables' policies.
#[pg_extern(stable, parallel_safe, name = "_token_tenant")]
fn token_tenant_sql() -> Option<pgrx::Uuid> {
    current_identity().and_then(|v| v.tenant).map(to_pg)
}

/// Verifies `jwt` and makes it the identity of the session (or, with `is_local`, of the current
/// transaction) by storing it in `nile.auth_token`.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn authenticate(jwt: Option<&str>, is_local: default!(Option<bool>, false)) -> pgrx::Uuid {
    let jwt = required(jwt, "jwt").or_raise();
    let is_local = required(is_local, "is_local").or_raise();
    let verified = verify_token(jwt).ok_or(AuthError::InvalidToken).or_raise();
    set_token(jwt, is_local);
    to_pg(verified.user_id)
}

/// The claims of the verified token in `nile.auth_token` (Supabase's auth.jwt()), or NULL when
/// there is none or it does not verify: for application policies, best as `(SELECT
/// nile_auth.claims())` so it runs once per statement.
#[pg_extern(stable, parallel_safe, name = "claims")]
fn claims_sql() -> Option<JsonB> {
    if current_identity().is_none() {
        return None;
    }
    with_session_setting_strict(AUTH_TOKEN, |token| token.and_then(tokens::payload))
        .or_else(|| with_session_setting_strict(FORWARDED_IDENTITY, |f| f.and_then(tokens::payload)))
        .map(JsonB)
}

/// The verified identity, or NULL. Not SECURITY DEFINER on purpose: see `privilege`.
#[pg_extern(stable, parallel_safe, name = "user_id")]
fn user_id_sql() -> Option<pgrx::Uuid> {
    current_user_id().map(to_pg)
}

/// The JSON shape of a user (Nile's User), from the view `nile_auth._user_profiles`.
pub fn user_json(user_id: Uuid) -> Option<JsonB> {
    read_one::<JsonB>(
        "SELECT profile FROM nile_auth._user_profiles WHERE id = $1",
        &[to_pg(user_id).into()],
    )
}

#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn me() -> JsonB {
    let verified = require_verified().or_raise();
    let mut profile = user_json(verified.user_id).ok_or(AuthError::NotAuthenticated).or_raise();
    // A token limited to one tenant shows only that tenant.
    if let (Some(scope), Some(serde_json::Value::Array(tenants))) = (verified.tenant, profile.0.get_mut("tenants")) {
        tenants.retain(|t| t.as_str() == Some(scope.to_string().as_str()));
    }
    let memberships = read_one_prepared::<JsonB>(
        "SELECT COALESCE(jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'roles', to_jsonb(tu.roles),
                                                      'isAdmin', tu.roles && ARRAY['owner', 'admin'], 'joined', tu.created)
                                   ORDER BY tu.created, t.id), '[]')
           FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
          WHERE tu.user_id = $1 AND tu.tenant_id = COALESCE($2, tu.tenant_id) AND tu.deleted IS NULL AND t.deleted IS NULL",
        &[to_pg(verified.user_id).into(), verified.tenant.map(to_pg).into()],
    )
    .map_or(serde_json::Value::Array(vec![]), |m| m.0);
    if let serde_json::Value::Object(fields) = &mut profile.0 {
        // Nexla's default_org: the first tenant joined.
        fields.insert("defaultTenant".into(), memberships.get(0).and_then(|m| m.get("id")).cloned().unwrap_or_default());
        fields.insert("memberships".into(), memberships);
    }
    profile
}

/// Profile fields a user may change, with their columns. Anything else is rejected.
const EDITABLE_FIELDS: [(&str, &str); 4] =
    [("name", "name"), ("givenName", "given_name"), ("familyName", "family_name"), ("picture", "picture")];
/// `emailVerified` is among them: only verify_email, with a token mailed to the address, sets it.
const IMMUTABLE_FIELDS: [&str; 5] = ["id", "email", "emailVerified", "created", "updated"];

/// Turns a `changes` object into `SET` assignments and their text arguments (numbered from
/// `$2`; `$1` is the user id). Column names come only from the list above.
pub fn profile_assignments(changes: &serde_json::Value) -> AuthResult<(Vec<String>, Vec<Option<String>>)> {
    let object = changes
        .as_object()
        .ok_or_else(|| AuthError::InvalidParameter("changes must be a JSON object".into()))?;
    let mut sets = Vec::new();
    let mut args = Vec::new();
    for (key, value) in object {
        if IMMUTABLE_FIELDS.contains(&key.as_str()) {
            return Err(AuthError::InvalidParameter(format!("field \"{key}\" cannot be changed")));
        }
        let Some((_, column)) = EDITABLE_FIELDS.iter().find(|(field, _)| field == key) else {
            return Err(AuthError::InvalidParameter(format!("unknown field \"{key}\"")));
        };
        let text = match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            _ => return Err(AuthError::InvalidParameter(format!("field \"{key}\" must be a string or null"))),
        };
        args.push(text);
        sets.push(format!("{column} = ${}", args.len() + 1));
    }
    Ok((sets, args))
}

/// Applies profile changes (see `profile_assignments`) to one user.
pub fn update_profile(user_id: Uuid, changes: &serde_json::Value) {
    let (sets, args) = profile_assignments(changes).or_raise();
    if sets.is_empty() {
        return;
    }
    let query = format!(
        "UPDATE nile_auth.users SET {}, updated = now() WHERE id = $1 AND deleted IS NULL",
        sets.join(", ")
    );
    let mut datums = vec![to_pg(user_id).into()];
    datums.extend(args.into_iter().map(Into::into));
    crate::db::write(&query, &datums);
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn update_me(changes: Option<crate::json_input::JsonInput>) -> JsonB {
    let changes = required(changes, "changes").or_raise();
    let user_id = require_account_user().or_raise();
    update_profile(user_id, &changes.0);
    user_json(user_id).ok_or(AuthError::NotAuthenticated).or_raise()
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_changes_map_to_columns() {
        let (sets, args) = profile_assignments(&json!({"name": "Ann", "picture": null})).unwrap();
        assert_eq!(sets, vec!["name = $2", "picture = $3"]);
        assert_eq!(args, vec![Some("Ann".to_owned()), None]);
    }

    #[test]
    fn immutable_unknown_and_non_string_fields_are_refused() {
        for bad in [json!({"email": "x@y.z"}), json!({"id": "1"}), json!({"created": "x"}),
                    json!({"emailVerified": true}), json!({"emailVerified": "not a time"}),
                    json!({"updated": "x"}), json!({"isAdmin": true}), json!({"name": 3}), json!([1])] {
            assert!(matches!(profile_assignments(&bad), Err(AuthError::InvalidParameter(_))), "{bad}");
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn signup_token(email: &str) -> String {
        Spi::get_one_with_args::<String>(
            "SELECT nile_auth.signup($1, 'a long password')->'token'->>'jwt'",
            &[email.into()],
        )
        .unwrap()
        .unwrap()
    }

    fn identity() -> Option<pgrx::Uuid> {
        Spi::get_one::<pgrx::Uuid>("SELECT nile_auth.user_id()").unwrap()
    }

    #[pg_test]
    fn revoking_a_key_drops_the_cached_identity() {
        let token = signup_token("cache-key@example.com");
        let old_kid = Spi::get_one::<String>("SELECT kid FROM nile_auth.signing_keys WHERE state = 'current'").unwrap().unwrap();
        Spi::run_with_args("SELECT nile_auth.authenticate($1)", &[token.as_str().into()]).unwrap();
        assert!(identity().is_some(), "a fresh token is an identity");
        Spi::run("SELECT nile_auth.rotate_signing_key()").unwrap();
        assert!(identity().is_some(), "rotation alone keeps old tokens valid");
        Spi::run_with_args("SELECT nile_auth.revoke_signing_key($1)", &[old_kid.as_str().into()]).unwrap();
        assert_eq!(identity(), None, "the cached verification must not outlive the key");
    }

    #[pg_test]
    fn deleting_a_user_drops_the_cached_identity() {
        let token = signup_token("cache-user@example.com");
        Spi::run_with_args("SELECT nile_auth.authenticate($1)", &[token.as_str().into()]).unwrap();
        assert!(identity().is_some());
        Spi::run("UPDATE nile_auth.users SET deleted = now() WHERE email = 'cache-user@example.com'").unwrap();
        assert_eq!(identity(), None);
    }

    #[pg_test]
    fn an_empty_or_garbage_setting_is_no_identity() {
        Spi::run("SET LOCAL nile.auth_token = ''").unwrap();
        assert_eq!(identity(), None);
        Spi::run("SET LOCAL nile.auth_token = 'garbage'").unwrap();
        assert_eq!(identity(), None);
    }

    #[pg_test(error = "invalid or expired token")]
    fn authenticate_rejects_garbage() {
        Spi::run("SELECT nile_auth.authenticate('a.b.c')").unwrap();
    }
}
