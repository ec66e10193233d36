//! Invitations to join a tenant, with roles and an expiry (Basejump, Keycloak Organizations).
//! The token is shown once, for the application to mail; only its SHA-256 is stored. Accepting
//! is the invitee's own action: the membership counts as joined by them (origin
//! 'accepted_invitation'), and holding the token proves the address.

use super::context::access;
use super::manage::{check_roles, hold_live_tenant, membership_json, tenant_or_current};
use crate::audit::record;
use crate::db::{from_pg, read_all, read_one, to_pg, write, write_returning};
use crate::errors::{AuthError, OrRaise, required};
use crate::identity::require_account_user;
use crate::users::{lookup_form, normalize_email};
use pgrx::JsonB;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use serde_json::json;
use uuid::Uuid;

const INVITATION_JSON: &str = "jsonb_build_object('id', id, 'tenantId', tenant_id, 'email', email, 'roles', to_jsonb(roles),
        'invitedBy', invited_by, 'created', created, 'expires', expires)";

fn not_found(id: Uuid) -> AuthError {
    AuthError::NotFound(format!("invitation {id} not found"))
}

/// Invites `email` to a tenant (default: the current one) with `roles`: owners and admins only.
/// A pending invitation to the same address and tenant is replaced. 23505 when a live user with
/// that address is a member already. Returns `{"id", "tenantId", "email", "roles", "expires",
/// "token"}`; the token is not shown again.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn invite(
    email: Option<&str>,
    roles: default!(Option<Vec<String>>, "'{member}'"),
    tenant_id: default!(Option<pgrx::Uuid>, "NULL"),
    expires_in: default!(Option<Interval>, "'7 days'"),
) -> JsonB {
    let email = normalize_email(required(email, "email").or_raise()).or_raise();
    let roles = required(roles, "roles").or_raise();
    let expires_in = required(expires_in, "expires_in").or_raise();
    check_roles(&roles).or_raise();
    let access = access(tenant_or_current(tenant_id)).require_admin();
    crate::caller::require_delivery_role("invite");
    let tenant = access.tenant;
    let member = read_one::<bool>(
        "SELECT true FROM nile_auth.users u JOIN nile_auth.tenant_users tu ON tu.user_id = u.id
          WHERE lower(u.email) = lower($1) AND u.deleted IS NULL AND tu.tenant_id = $2 AND tu.deleted IS NULL",
        &[email.as_str().into(), to_pg(tenant).into()],
    );
    if member == Some(true) {
        AuthError::AlreadyExists(format!("user with email \"{email}\" is already a member of tenant {tenant}")).raise();
    }
    write(
        "UPDATE nile_auth.invitations SET revoked = now()
          WHERE tenant_id = $1 AND lower(email) = lower($2) AND accepted IS NULL AND revoked IS NULL",
        &[to_pg(tenant).into(), email.as_str().into()],
    );
    let token = crate::one_time_tokens::random_token();
    let row = write_returning(
        &format!(
            "INSERT INTO nile_auth.invitations (tenant_id, email, roles, token_hash, invited_by, expires)
             SELECT $1, $2, $3, sha256(convert_to($4, 'UTF8')), $5, now() + $6
              WHERE now() + $6 > now()
             RETURNING id"
        ),
        &[
            to_pg(tenant).into(),
            email.as_str().into(),
            roles.clone().into(),
            token.as_str().into(),
            access.caller.user().map(to_pg).into(),
            expires_in.into(),
        ],
        |row| row.get::<pgrx::Uuid>(1),
    );
    let Some(Some(id)) = row else {
        AuthError::InvalidParameter("expires_in must be a positive interval".into()).raise();
    };
    // Read back, not RETURNING: Citus allows no function there.
    let JsonB(mut json) = read_one::<JsonB>(&format!("SELECT {INVITATION_JSON} FROM nile_auth.invitations WHERE id = $1"), &[id.into()])
        .unwrap_or_else(|| AuthError::Internal("invitation not stored".into()).raise());
    record("invitation.created", access.caller.user(), Some(tenant), Some(&from_pg(id).to_string()), json!({"email": email, "roles": roles}));
    json["token"] = token.into();
    JsonB(json)
}

/// The tenant's invitations not yet accepted or revoked (expired ones included, to be sent
/// again), oldest first, without tokens: owners and admins only.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_invitations(tenant_id: default!(Option<pgrx::Uuid>, "NULL")) -> SetOfIterator<'static, JsonB> {
    let access = access(tenant_or_current(tenant_id)).require_admin();
    SetOfIterator::new(read_all::<JsonB>(
        &format!(
            "SELECT {INVITATION_JSON} FROM nile_auth.invitations
              WHERE tenant_id = $1 AND accepted IS NULL AND revoked IS NULL ORDER BY created, id"
        ),
        &[to_pg(access.tenant).into()],
    ))
}

/// Revokes an invitation not yet accepted: its token accepts nothing. Owners and admins of its
/// tenant; P0002 for anyone else, or an invitation already accepted or revoked.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_invitation(id: Option<pgrx::Uuid>) -> bool {
    let id = from_pg(required(id, "id").or_raise());
    let tenant = read_one::<pgrx::Uuid>(
        "SELECT tenant_id FROM nile_auth.invitations WHERE id = $1 AND accepted IS NULL AND revoked IS NULL",
        &[to_pg(id).into()],
    )
    .map(from_pg)
    .unwrap_or_else(|| not_found(id).raise());
    let access = super::context::access_or(tenant, || not_found(id)).require_admin();
    // Accepted or revoked meanwhile: not found, as above.
    write_returning(
        "UPDATE nile_auth.invitations SET revoked = now() WHERE id = $1 AND accepted IS NULL AND revoked IS NULL RETURNING true",
        &[to_pg(id).into()],
        |row| row.get::<bool>(1),
    )
    .unwrap_or_else(|| not_found(id).raise());
    record("invitation.revoked", access.caller.user(), Some(tenant), Some(&id.to_string()), json!({}));
    true
}

/// Accepts an invitation for the signed-in user, whose address must be the invited one (42501
/// otherwise). 28000 for a token that is unknown, used, revoked, expired, or whose tenant is gone.
/// Returns the membership.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn accept_invitation(token: Option<&str>) -> JsonB {
    let token = required(token, "token").or_raise();
    let user = require_account_user().or_raise();
    // Shares the lock delete_user takes: a user being deleted accepts nothing.
    let email = write_returning(
        "SELECT email FROM nile_auth.users WHERE id = $1 AND deleted IS NULL FOR SHARE",
        &[to_pg(user).into()],
        |row| row.get::<String>(1),
    )
    .flatten()
    .unwrap_or_else(|| AuthError::NotAuthenticated.raise());
    let tenant = accept(token, user, &email);
    membership_json(tenant, user)
}

/// Uses the invitation `token` for `user`, whose address is `email`: the membership begins (or,
/// for a member, gains the invited roles) as the user's own action, and the address counts as
/// verified. Returns the tenant. Shared by accept_invitation and signup. 28000 also when the
/// inviter is no longer an owner or admin of the tenant.
pub fn accept(token: &str, user: Uuid, email: &str) -> Uuid {
    let row = write_returning(
        "UPDATE nile_auth.invitations i SET accepted = now(), accepted_by = $2
          WHERE i.token_hash = sha256(convert_to($1, 'UTF8')) AND i.accepted IS NULL AND i.revoked IS NULL
            AND i.expires > now()
            -- Whoever invited is still an owner or admin there (NULL: the trusted backend).
            AND (i.invited_by IS NULL OR EXISTS (
                  SELECT FROM nile_auth.tenant_users tu
                   WHERE tu.tenant_id = i.tenant_id AND tu.user_id = i.invited_by AND tu.deleted IS NULL
                     AND tu.roles && ARRAY['owner', 'admin']))
         RETURNING i.id, i.tenant_id, i.roles, lower(i.email) = lower($3)",
        &[token.into(), to_pg(user).into(), lookup_form(email).into()],
        |row| Ok((row.get::<pgrx::Uuid>(1)?, row.get::<pgrx::Uuid>(2)?, row.get::<Vec<String>>(3)?, row.get::<bool>(4)?)),
    );
    let Some((Some(id), Some(tenant), Some(invited_roles), Some(same_address))) = row else {
        AuthError::InvalidToken.raise()
    };
    let (id, tenant) = (from_pg(id), from_pg(tenant));
    if !hold_live_tenant(tenant) {
        AuthError::InvalidToken.raise();
    }
    if !same_address {
        AuthError::PermissionDenied("this invitation is for another email address".into()).raise();
    }
    let live_roles = read_one::<Vec<String>>(
        "SELECT roles FROM nile_auth.tenant_users WHERE tenant_id = $1 AND user_id = $2 AND deleted IS NULL",
        &[to_pg(tenant).into(), to_pg(user).into()],
    );
    let mut roles = live_roles.clone().unwrap_or_default();
    for role in invited_roles {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    write(
        "INSERT INTO nile_auth.tenant_users (tenant_id, user_id, roles, origin) VALUES ($1, $2, $3, 'accepted_invitation')
         ON CONFLICT (tenant_id, user_id) DO UPDATE
            SET roles = EXCLUDED.roles,
                -- Joining by invitation is the user's own action, also for someone added before.
                origin = CASE WHEN nile_auth.tenant_users.deleted IS NULL AND nile_auth.tenant_users.origin <> 'added'
                              THEN nile_auth.tenant_users.origin ELSE 'accepted_invitation' END,
                created = CASE WHEN nile_auth.tenant_users.deleted IS NULL THEN nile_auth.tenant_users.created ELSE EXCLUDED.created END,
                deleted = NULL, updated = EXCLUDED.updated",
        &[to_pg(tenant).into(), to_pg(user).into(), roles.clone().into()],
    );
    // The token was mailed to this address: holding it proves the address.
    write("UPDATE nile_auth.users SET email_verified = now() WHERE id = $1 AND email_verified IS NULL", &[to_pg(user).into()]);
    record("invitation.accepted", Some(user), Some(tenant), Some(&id.to_string()), json!({}));
    let event = if live_roles.is_some() { "membership.roles_changed" } else { "membership.added" };
    if live_roles.as_ref() != Some(&roles) {
        record(event, Some(user), Some(tenant), Some(&user.to_string()), json!({"roles": roles, "invitation": id}));
    }
    tenant
}
