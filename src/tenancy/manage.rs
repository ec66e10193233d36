//! Tenants and memberships in Nile's SDK shapes: create, list, rename and delete tenants; add,
//! link and remove members; users created by a tenant. Who may do what is the permission
//! matrix in docs/api.md; `context::access` looks it up once per call.

use super::context::{Access, access, require_current_tenant, tenant_not_found};
use crate::audit::record;
use crate::caller::{Caller, account_caller, caller_and_scope};
use crate::db::{
    from_pg, read_all, read_all_prepared, read_one, read_one_prepared, read_row_prepared, to_pg, write, write_prepared, write_returning,
};
use crate::errors::{AuthError, AuthResult, OrRaise, required};
use crate::identity::user_json;
use crate::privilege::as_extension_owner;
use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::json;
use uuid::Uuid;


/// Creates a tenant with no members; returns its id.
fn insert_tenant(name: &str, actor: Option<Uuid>) -> Uuid {
    if name.trim().is_empty() {
        AuthError::InvalidParameter("tenant name must not be empty".into()).raise();
    }
    let tenant_id = Uuid::now_v7();
    write("INSERT INTO nile_auth.tenants (id, name) VALUES ($1, $2)", &[to_pg(tenant_id).into(), name.into()]);
    record("tenant.created", actor, Some(tenant_id), Some(&tenant_id.to_string()), json!({"name": name}));
    tenant_id
}

/// Creates a tenant and makes `owner` its owner; returns the tenant id.
pub fn create_tenant_owned_by(name: &str, owner: Uuid) -> Uuid {
    let tenant_id = insert_tenant(name, Some(owner));
    write(
        "INSERT INTO nile_auth.tenant_users (tenant_id, user_id, roles, origin) VALUES ($1, $2, ARRAY['owner'], 'created_tenant')",
        &[to_pg(tenant_id).into(), to_pg(owner).into()],
    );
    tenant_id
}

fn tenant_json(tenant: Uuid) -> JsonB {
    as_extension_owner(|| {
        read_one::<JsonB>(
            "SELECT jsonb_build_object('id', id, 'name', name) FROM nile_auth.tenants WHERE id = $1",
            &[to_pg(tenant).into()],
        )
    })
    .unwrap_or_else(|| tenant_not_found(tenant).raise())
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn create_tenant(name: Option<&str>) -> JsonB {
    let name = required(name, "name").or_raise();
    let tenant = match account_caller().or_raise() {
        Caller::User(user) => create_tenant_owned_by(name, user),
        Caller::TrustedBackend => insert_tenant(name, None),
    };
    tenant_json(tenant)
}

#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_tenants() -> SetOfIterator<'static, JsonB> {
    // Two queries rather than one with "$1 IS NULL OR ...", which would scan every tenant: an
    // end user's list starts from their memberships (an index on user_id).
    let rows = match caller_and_scope().or_raise() {
        // A token limited to one tenant lists only that tenant.
        (Caller::User(user), scope) => read_all_prepared::<JsonB>(
            "SELECT jsonb_build_object('id', t.id, 'name', t.name)
               FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
              WHERE tu.user_id = $1 AND tu.tenant_id = COALESCE($2, tu.tenant_id)
                AND tu.deleted IS NULL AND t.deleted IS NULL
              ORDER BY t.created, t.id",
            &[to_pg(user).into(), scope.map(to_pg).into()],
        ),
        (Caller::TrustedBackend, _) => read_all::<JsonB>(
            "SELECT jsonb_build_object('id', t.id, 'name', t.name) FROM nile_auth.tenants t
              WHERE t.deleted IS NULL ORDER BY t.created, t.id",
            &[],
        ),
    };
    SetOfIterator::new(rows)
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn rename_tenant(tenant_id: Option<pgrx::Uuid>, name: Option<&str>) -> JsonB {
    let tenant = from_pg(required(tenant_id, "tenant_id").or_raise());
    let name = required(name, "name").or_raise();
    if name.trim().is_empty() {
        AuthError::InvalidParameter("tenant name must not be empty".into()).raise();
    }
    let access = access(tenant).require_admin();
    write("UPDATE nile_auth.tenants SET name = $2, updated = now() WHERE id = $1", &[to_pg(tenant).into(), name.into()]);
    record("tenant.renamed", access.caller.user(), Some(tenant), Some(&tenant.to_string()), json!({"name": name}));
    tenant_json(tenant)
}

/// Soft-deletes the tenant: it disappears from every listing and nobody can use it.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn delete_tenant(tenant_id: Option<pgrx::Uuid>) -> bool {
    let tenant = from_pg(required(tenant_id, "tenant_id").or_raise());
    let access = access(tenant).require_admin();
    end_tenant(tenant);
    record("tenant.deleted", access.caller.user(), Some(tenant), Some(&tenant.to_string()), json!({}));
    true
}

/// Soft-deletes `tenant` and ends its memberships: how every tenant ends (delete_tenant, and
/// delete_user for a tenant it leaves with no other member).
pub fn end_tenant(tenant: Uuid) {
    write("UPDATE nile_auth.tenants SET deleted = now(), updated = now() WHERE id = $1 AND deleted IS NULL", &[to_pg(tenant).into()]);
    end_memberships(Memberships::OfTenant(tenant));
}

/// Keeps `tenant` live until this transaction ends, for a caller about to add a membership:
/// `end_tenant` writes the row, so it waits, and then ends that membership with the rest. False
/// when the tenant is deleted.
pub(crate) fn hold_live_tenant(tenant: Uuid) -> bool {
    write_returning(
        "SELECT true FROM nile_auth.tenants WHERE id = $1 AND deleted IS NULL FOR SHARE",
        &[to_pg(tenant).into()],
        |row| row.get::<bool>(1),
    )
    .is_some()
}

/// Whose live memberships `end_memberships` ends.
pub enum Memberships {
    One { tenant: Uuid, user: Uuid },
    OfTenant(Uuid),
    OfUser(Uuid),
}

/// Ends live memberships and the team memberships that hang on them: a removal, a departure, a
/// deleted tenant or user. Here rather than in triggers: on Citus a trigger runs on each node's
/// copy of a reference table, where it may not write another distributed table. Ending a
/// membership drops it from every backend's cache (the invalidation trigger on tenant_users).
pub fn end_memberships(which: Memberships) {
    let (filter, args) = match which {
        Memberships::One { tenant, user } => ("tenant_id = $1 AND user_id = $2", vec![to_pg(tenant).into(), to_pg(user).into()]),
        Memberships::OfTenant(tenant) => ("tenant_id = $1", vec![to_pg(tenant).into()]),
        Memberships::OfUser(user) => ("user_id = $1", vec![to_pg(user).into()]),
    };
    // The memberships first: that waits for any add_team_member writing one of them, so the
    // DELETE, with a newer snapshot, sees the team membership it added.
    write(&format!("UPDATE nile_auth.tenant_users SET deleted = now(), updated = now() WHERE {filter} AND deleted IS NULL"), &args);
    write(&format!("DELETE FROM nile_auth.team_members WHERE {filter}"), &args);
}

pub(crate) fn check_roles(roles: &[String]) -> AuthResult<()> {
    if roles.is_empty() || roles.iter().any(|r| r.trim().is_empty()) {
        return Err(AuthError::InvalidParameter("roles must be a non-empty list of non-empty names".into()));
    }
    Ok(())
}

/// Makes `user` a live member of `tenant` with `roles`, or updates the roles of a member. Any
/// member may add users as plain members; granting other roles or changing an existing
/// member's roles needs owner or admin.
fn put_member(access: Access, user: Uuid, roles: Option<Vec<String>>, metadata: Option<serde_json::Value>) -> JsonB {
    let tenant = access.tenant;
    let current = as_extension_owner(|| {
        read_row_prepared(
            "SELECT roles, deleted IS NULL FROM nile_auth.tenant_users WHERE tenant_id = $1 AND user_id = $2",
            &[to_pg(tenant).into(), to_pg(user).into()],
            |row| Ok((row.get::<Vec<String>>(1)?.unwrap_or_default(), row.get::<bool>(2)?.unwrap_or(false))),
        )
    });
    let live_roles = current.as_ref().filter(|(_, live)| *live).map(|(roles, _)| roles.clone());
    let wanted = roles.clone().or_else(|| live_roles.clone()).unwrap_or_else(|| vec!["member".into()]);
    check_roles(&wanted).or_raise();
    let changes_roles = match &live_roles {
        Some(existing) => roles.as_ref().is_some_and(|r| r != existing),
        None => wanted != ["member"],
    };
    // Roles, and anything about someone else's membership (its metadata), are the owners' and
    // admins' to change; a member may add members and edit their own metadata.
    let someone_elses = live_roles.is_some() && access.caller != Caller::User(user) && metadata.is_some();
    if changes_roles || someone_elses {
        access.require_admin();
    }
    let demotes_owner = live_roles.as_ref().is_some_and(|r| r.iter().any(|x| x == "owner")) && !wanted.iter().any(|x| x == "owner");
    if demotes_owner {
        refuse_if_last_owner(tenant, user);
    }
    if !hold_live_tenant(tenant) {
        tenant_not_found(tenant).raise();
    }
    write_prepared(
        "INSERT INTO nile_auth.tenant_users (tenant_id, user_id, roles, metadata, origin)
         VALUES ($1, $2, $3, COALESCE($4, '{}'), 'added')
         ON CONFLICT (tenant_id, user_id) DO UPDATE
            SET roles = EXCLUDED.roles, metadata = COALESCE($4, nile_auth.tenant_users.metadata),
                -- A membership that had ended begins again, added by someone else, joined now.
                origin = CASE WHEN nile_auth.tenant_users.deleted IS NULL THEN nile_auth.tenant_users.origin ELSE 'added' END,
                created = CASE WHEN nile_auth.tenant_users.deleted IS NULL THEN nile_auth.tenant_users.created ELSE EXCLUDED.created END,
                deleted = NULL, updated = EXCLUDED.updated",
        &[to_pg(tenant).into(), to_pg(user).into(), wanted.clone().into(), metadata.map(JsonB).into()],
    );
    if live_roles.as_ref() != Some(&wanted) {
        let event = if live_roles.is_some() { "membership.roles_changed" } else { "membership.added" };
        record(event, access.caller.user(), Some(tenant), Some(&user.to_string()), json!({"roles": wanted}));
    }
    membership_json(tenant, user)
}

pub(crate) fn membership_json(tenant: Uuid, user: Uuid) -> JsonB {
    read_one_prepared::<JsonB>(
        "SELECT jsonb_build_object('tenantId', tenant_id, 'userId', user_id, 'roles', to_jsonb(roles), 'metadata', metadata)
           FROM nile_auth.tenant_users WHERE tenant_id = $1 AND user_id = $2",
        &[to_pg(tenant).into(), to_pg(user).into()],
    )
    .unwrap_or_else(|| AuthError::NotFound(format!("user {user} not found")).raise())
}

/// The live members of `tenant` other than `leaving`, and how many of them are owners, counted
/// after writing the tenant row. Two owners leaving at once must not both see the other stay:
/// the write serialises them, so under READ COMMITTED the second waits, then counts with a new
/// snapshot; under REPEATABLE READ or SERIALIZABLE it fails with 40001 instead of counting a
/// stale one.
pub(crate) fn others_staying(tenant: Uuid, leaving: Uuid) -> (i64, i64) {
    write("UPDATE nile_auth.tenants SET updated = now() WHERE id = $1", &[to_pg(tenant).into()]);
    read_row_prepared(
        "SELECT count(*), count(*) FILTER (WHERE 'owner' = ANY (roles)) FROM nile_auth.tenant_users
          WHERE tenant_id = $1 AND user_id <> $2 AND deleted IS NULL",
        &[to_pg(tenant).into(), to_pg(leaving).into()],
        |row| Ok((row.get::<i64>(1)?.unwrap_or(0), row.get::<i64>(2)?.unwrap_or(0))),
    )
    .unwrap_or((0, 0))
}

pub(crate) fn last_owner(tenant: Uuid, leaving: Uuid) -> AuthError {
    AuthError::ObjectNotInPrerequisiteState(format!("user {leaving} is the last owner of tenant {tenant}"))
}

fn refuse_if_last_owner(tenant: Uuid, leaving: Uuid) {
    if others_staying(tenant, leaving).1 == 0 {
        last_owner(tenant, leaving).raise();
    }
}

pub(crate) fn tenant_or_current(tenant_id: Option<pgrx::Uuid>) -> Uuid {
    tenant_id.map(from_pg).unwrap_or_else(require_current_tenant)
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn add_member(
    tenant_id: Option<pgrx::Uuid>,
    email: Option<&str>,
    roles: default!(Option<Vec<String>>, "'{member}'"),
    metadata: default!(Option<crate::json_input::JsonInput>, "'{}'"),
) -> JsonB {
    let tenant = from_pg(required(tenant_id, "tenant_id").or_raise());
    let email = &crate::users::lookup_form(required(email, "email").or_raise());
    let roles = required(roles, "roles").or_raise();
    let metadata = required(metadata, "metadata").or_raise();
    let access = access(tenant);
    let user = read_one_prepared::<pgrx::Uuid>(
        "SELECT id FROM nile_auth.users WHERE lower(email) = lower($1) AND deleted IS NULL",
        &[email.into()],
    )
    .map(from_pg)
    .unwrap_or_else(|| AuthError::NotFound(format!("user with email \"{email}\" not found")).raise());
    put_member(access, user, Some(roles), Some(metadata.0))
}

/// Nile's linkUser: links any live user, by id, to a tenant the caller may use (default: the
/// current one), as a plain member added by someone else (no power over the user's account).
/// Succeeds when the user is already a member, leaving their roles alone. P0002 for an unknown
/// user or tenant, or a tenant the caller may not use.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn link_user(user_id: Option<pgrx::Uuid>, tenant_id: default!(Option<pgrx::Uuid>, "NULL")) -> JsonB {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let access = access(tenant_or_current(tenant_id));
    crate::admin::require_live_user(user);
    put_member(access, user, None, None)
}

/// Removes a membership. Anyone may leave; removing someone else needs owner or admin; the
/// last owner cannot leave.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn unlink_user(user_id: Option<pgrx::Uuid>, tenant_id: default!(Option<pgrx::Uuid>, "NULL")) -> bool {
    let user = from_pg(required(user_id, "user_id").or_raise());
    let tenant = tenant_or_current(tenant_id);
    let access = access(tenant);
    if access.caller != Caller::User(user) {
        access.require_admin();
    }
    let roles = as_extension_owner(|| {
        read_one::<Vec<String>>(
            "SELECT roles FROM nile_auth.tenant_users WHERE tenant_id = $1 AND user_id = $2 AND deleted IS NULL",
            &[to_pg(tenant).into(), to_pg(user).into()],
        )
    })
    .unwrap_or_else(|| AuthError::NotFound(format!("user {user} not found")).raise());
    if roles.iter().any(|r| r == "owner") {
        refuse_if_last_owner(tenant, user);
    }
    end_memberships(Memberships::One { tenant, user });
    record("membership.removed", access.caller.user(), Some(tenant), Some(&user.to_string()), json!({}));
    true
}

/// A new user with a password, made a member of the current tenant.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn create_tenant_user(email: Option<&str>, password: Option<&str>, preferred_name: default!(Option<&str>, "NULL")) -> JsonB {
    let email = required(email, "email").or_raise();
    let password = required(password, "password").or_raise();
    let tenant = require_current_tenant();
    // For the trusted backend, any id can be set: make a missing tenant P0002, not an FK error.
    let actor = access(tenant).caller.user();
    let user = crate::users::create_user(email, password, preferred_name);
    write(
        "INSERT INTO nile_auth.tenant_users (tenant_id, user_id, origin) VALUES ($1, $2, 'created_by_tenant')",
        &[to_pg(tenant).into(), to_pg(user).into()],
    );
    record("user.created", actor, Some(tenant), Some(&user.to_string()), json!({}));
    record("membership.added", actor, Some(tenant), Some(&user.to_string()), json!({"roles": ["member"]}));
    user_json(user).unwrap_or_else(|| AuthError::NotFound(format!("user {user} not found")).raise())
}
