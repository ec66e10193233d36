//! Signup and login: the only ways to get a token by proving who you are.

use crate::db::{from_pg, read_row_prepared, to_pg, write};
use crate::errors::{AuthError, OrRaise, required};
use crate::audit::record;
use crate::lockout;
use crate::passwords;
use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::json;

/// A new account, signed in: `{"id", "email", "tenants", "token", "refreshToken", "sessionId"}`. With `new_tenant`, the user
/// creates and owns that tenant; with `invitation`, the user accepts it in the same transaction
/// (its address must be the invited one), which also proves the address. `tenants` lists both.
/// (The Rust name differs from the SQL name: 0.1.0's four-argument signup called a symbol of
/// its own, which must not be handed a different argument list; see tests/upgrade.)
#[pg_extern(security_definer, volatile, name = "signup")]
#[search_path(pg_catalog, pg_temp)]
fn signup_with_invitation(
    email: Option<&str>,
    password: Option<&str>,
    preferred_name: default!(Option<&str>, "NULL"),
    new_tenant: default!(Option<&str>, "NULL"),
    invitation: default!(Option<&str>, "NULL"),
) -> JsonB {
    let email = crate::users::normalize_email(required(email, "email").or_raise()).or_raise();
    let email = email.as_str();
    let password = required(password, "password").or_raise();
    let user_id = crate::users::create_user(email, password, preferred_name);
    record("user.signup", Some(user_id), None, Some(&user_id.to_string()), json!({}));
    let mut tenants: Vec<String> =
        new_tenant.map(|name| crate::tenancy::manage::create_tenant_owned_by(name, user_id).to_string()).into_iter().collect();
    if let Some(token) = invitation {
        tenants.push(crate::tenancy::invitations::accept(token, user_id, email).to_string());
    }
    let mut response = crate::sessions::open(user_id, email, None, None);
    response.insert("id".into(), json!(user_id));
    response.insert("email".into(), json!(email));
    response.insert("tenants".into(), json!(tenants));
    JsonB(response.into())
}

/// `{"id", "token", "refreshToken", "sessionId"}`: a new session for `user`.
pub fn signed_in(user: uuid::Uuid, email: &str, tenant: Option<uuid::Uuid>, api_key: Option<uuid::Uuid>) -> JsonB {
    let mut response = crate::sessions::open(user, email, tenant, api_key);
    response.insert("id".into(), json!(user));
    JsonB(response.into())
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn login(email: Option<&str>, password: Option<&str>) -> JsonB {
    let email = required(email, "email").or_raise();
    let password = required(password, "password").or_raise();
    if password.len() > passwords::MAX_PASSWORD_BYTES {
        AuthError::InvalidParameter(format!("password must be at most {} bytes", passwords::MAX_PASSWORD_BYTES)).raise();
    }
    let email = &crate::users::lookup_form(email);
    // Kept plans (read_row_prepared) for both lookups: planning them would cost more than
    // everything else login does besides argon2.
    let user = read_row_prepared(
        "SELECT id, email, deactivated IS NOT NULL FROM nile_auth.users WHERE lower(email) = lower($1) AND deleted IS NULL",
        &[email.into()],
        |row| {
            Ok((
                row.get::<pgrx::Uuid>(1)?.map(from_pg),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<bool>(3)?.unwrap_or(true),
            ))
        },
    );
    let (user, stored_email) = match user {
        Some((Some(id), stored, deactivated)) => (Some((id, deactivated)), stored),
        _ => (None, String::new()),
    };
    let account = lockout::Account::read(user, email);
    lockout::check_password(&account, password);
    let Some((user_id, _)) = user else { AuthError::InvalidCredentials.raise() };
    if passwords::needs_rehash(account.hash()) {
        write(
            "UPDATE nile_auth.credentials SET password_hash = $2, updated = now() WHERE user_id = $1",
            &[to_pg(user_id).into(), passwords::hash_password(password).or_raise().into()],
        );
    }
    if !crate::sessions::still_valid(user_id) {
        AuthError::InvalidCredentials.raise();
    }
    record("login.succeeded", Some(user_id), None, Some(&user_id.to_string()), json!({}));
    signed_in(user_id, &stored_email, None, None)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    use pgrx::prelude::*;

    fn stored_hash(email: &str) -> String {
        Spi::get_one_with_args::<String>(
            "SELECT c.password_hash FROM nile_auth.credentials c JOIN nile_auth.users u ON u.id = c.user_id WHERE u.email = $1",
            &[email.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn a_weaker_hash_is_upgraded_on_the_next_good_login() {
        Spi::run("SELECT nile_auth.signup('upgrade@example.com', 'upgrade me please')").unwrap();
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap())
            .hash_password(b"upgrade me please", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
            .unwrap()
            .to_string();
        Spi::run_with_args(
            "UPDATE nile_auth.credentials SET password_hash = $1 WHERE user_id = (SELECT id FROM nile_auth.users WHERE email = 'upgrade@example.com')",
            &[weak.as_str().into()],
        )
        .unwrap();
        Spi::run("SELECT nile_auth.login('upgrade@example.com', 'upgrade me please')").unwrap();
        let upgraded = stored_hash("upgrade@example.com");
        assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{upgraded}");
        // ... and the upgraded hash still logs in.
        Spi::run("SELECT nile_auth.login('upgrade@example.com', 'upgrade me please')").unwrap();
    }

    #[pg_test(error = "invalid email or password")]
    fn a_wrong_password_does_not_upgrade_or_log_in() {
        Spi::run("SELECT nile_auth.signup('wrong@example.com', 'the right password')").unwrap();
        Spi::run("SELECT nile_auth.login('wrong@example.com', 'the wrong password')").unwrap();
    }
}
