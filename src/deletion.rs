//! Deleting an account (Nile's DELETE /users/$USER_ID): self-service, or by whoever administers
//! the account. One transaction ends everything the user could use and erases their secrets.

use crate::admin::{authorize_account_admin, user_not_found};
use crate::audit::record;
use crate::caller::{Caller, account_caller};
use crate::db::{from_pg, read_all, to_pg, write, write_returning};
use crate::errors::{AuthError, OrRaise};
use crate::tenancy::manage::{Memberships, end_memberships, end_tenant, last_owner, others_staying};
use pgrx::prelude::*;
use serde_json::json;

/// Deletes `user_id`, or with NULL the caller's own account. Memberships end; every session and
/// token stops verifying in every backend at its next statement; credentials, one-time tokens, API keys and
/// the lockout record are erased; the profile is cleared and the address freed; pending
/// invitations to it are void. A tenant the user owns alone with nobody else in it is deleted;
/// one with other members but no other owner refuses with 55000 until ownership moves.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn delete_user(user_id: default!(Option<pgrx::Uuid>, "NULL")) -> bool {
    let (user, actor) = match (user_id.map(from_pg), account_caller().or_raise()) {
        (None, Caller::User(me)) => (me, Some(me)),
        (None, Caller::TrustedBackend) => {
            AuthError::InvalidParameter("user_id must not be NULL for the trusted backend".into()).raise()
        }
        (Some(user), Caller::User(me)) if user == me => (me, Some(me)),
        (Some(user), _) => (user, authorize_account_admin(user)),
    };
    // Locks the account: a concurrent deletion, login rehash or email change waits for this one.
    let email = write_returning(
        "SELECT email FROM nile_auth.users WHERE id = $1 AND deleted IS NULL FOR UPDATE",
        &[to_pg(user).into()],
        |row| row.get::<String>(1),
    )
    .flatten()
    .unwrap_or_else(|| user_not_found(user).raise());
    for tenant in read_all::<pgrx::Uuid>(
        "SELECT tenant_id FROM nile_auth.tenant_users WHERE user_id = $1 AND deleted IS NULL AND 'owner' = ANY (roles)
          ORDER BY tenant_id",
        &[to_pg(user).into()],
    )
    .into_iter()
    .map(from_pg)
    {
        match others_staying(tenant, user) {
            (0, _) => {
                end_tenant(tenant);
                record("tenant.deleted", actor, Some(tenant), Some(&tenant.to_string()), json!({"lastMemberDeleted": true}));
            }
            (_, 0) => last_owner(tenant, user).raise(),
            _ => {}
        }
    }
    let id = [to_pg(user).into()];
    end_memberships(Memberships::OfUser(user));
    write(
        "UPDATE nile_auth.invitations SET revoked = now()
          WHERE lower(email) = lower($1) AND accepted IS NULL AND revoked IS NULL",
        &[email.as_str().into()],
    );
    write("DELETE FROM nile_auth.credentials WHERE user_id = $1", &id);
    write("DELETE FROM nile_auth.one_time_tokens WHERE user_id = $1", &id);
    // Sessions first: their tokens stop verifying, and the API keys they came from go next.
    crate::sessions::delete_all(user);
    write("DELETE FROM nile_auth.api_keys WHERE user_id = $1", &id);
    // The persisted count only: clearing the shared count would outlive a rollback, and a
    // deleted account checks no password anyway.
    write("DELETE FROM nile_auth.login_failures WHERE account = $1", &id);
    // Soft-deleted, so ids in the audit log and in application tables still resolve; nothing
    // personal stays. Setting `deleted` makes every backend drop cached verifications of the
    // user's tokens (sql/finalize.sql), and verification refuses a deleted user.
    write(
        "UPDATE nile_auth.users SET deleted = now(), updated = now(), email = '', name = NULL, given_name = NULL,
                family_name = NULL, picture = NULL, email_verified = NULL, metadata = '{}'
          WHERE id = $1",
        &id,
    );
    record("user.deleted", actor, None, Some(&user.to_string()), json!({"self": actor == Some(user)}));
    true
}
