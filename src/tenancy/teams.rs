//! Teams (Nexla): named groups of members inside a tenant. Owners and admins manage them,
//! members list them; the rows are tenant data under row-level security (sql/teams.sql), and
//! `team_ids()` gives application policies the current user's teams.

use super::context::{Access, access_or, require_current_tenant};
use super::manage::tenant_or_current;
use crate::audit::record;
use crate::db::{from_pg, read_all, read_one, to_pg, write, write_returning};
use crate::errors::{AuthError, OrRaise, required};
use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::json;
use uuid::Uuid;

/// `{"id", "tenantId", "name", "created", "members"}`, members as user ids, oldest first.
const TEAM_JSON: &str = "jsonb_build_object('id', t.id, 'tenantId', t.tenant_id, 'name', t.name, 'created', t.created,
        'members', ARRAY(SELECT m.user_id FROM nile_auth.team_members m WHERE m.team_id = t.id ORDER BY m.created, m.user_id))";

fn team_not_found(team: Uuid) -> AuthError {
    AuthError::NotFound(format!("team {team} not found"))
}

fn team_json(team: Uuid) -> JsonB {
    read_one::<JsonB>(&format!("SELECT {TEAM_JSON} FROM nile_auth.teams t WHERE t.id = $1"), &[to_pg(team).into()])
        .unwrap_or_else(|| team_not_found(team).raise())
}

/// The team's tenant and the caller's access there, for an owner or admin: a team in a tenant
/// the caller may not use reads as not found; 42501 for a plain member.
fn manage(team: Uuid) -> Access {
    let tenant = read_one::<pgrx::Uuid>(
        "SELECT t.tenant_id FROM nile_auth.teams t JOIN nile_auth.tenants tn ON tn.id = t.tenant_id
          WHERE t.id = $1 AND tn.deleted IS NULL",
        &[to_pg(team).into()],
    )
    .map(from_pg)
    .unwrap_or_else(|| team_not_found(team).raise());
    access_or(tenant, || team_not_found(team)).require_admin()
}

fn check_name(name: &str) {
    if name.trim().is_empty() {
        AuthError::InvalidParameter("team name must not be empty".into()).raise();
    }
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn create_team(name: Option<&str>, tenant_id: default!(Option<pgrx::Uuid>, "NULL")) -> JsonB {
    let name = required(name, "name").or_raise();
    check_name(name);
    let access = super::context::access(tenant_or_current(tenant_id)).require_admin();
    let team = write_returning(
        "INSERT INTO nile_auth.teams (tenant_id, name) VALUES ($1, $2) RETURNING id",
        &[to_pg(access.tenant).into(), name.into()],
        |row| row.get::<pgrx::Uuid>(1),
    )
    .flatten()
    .map(from_pg)
    .unwrap_or_else(|| AuthError::Internal("team not created".into()).raise());
    record("team.created", access.caller.user(), Some(access.tenant), Some(&team.to_string()), json!({"name": name}));
    team_json(team)
}

/// The current tenant's teams, oldest first: for any member.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_teams() -> SetOfIterator<'static, JsonB> {
    let tenant = require_current_tenant();
    SetOfIterator::new(read_all::<JsonB>(
        &format!("SELECT {TEAM_JSON} FROM nile_auth.teams t WHERE t.tenant_id = $1 ORDER BY t.created, t.id"),
        &[to_pg(tenant).into()],
    ))
}

/// Adds a live member of the team's tenant to the team (nothing changes if they are in it).
/// Returns the team.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn add_team_member(team_id: Option<pgrx::Uuid>, user_id: Option<pgrx::Uuid>) -> JsonB {
    let team = from_pg(required(team_id, "team_id").or_raise());
    let user = from_pg(required(user_id, "user_id").or_raise());
    let access = manage(team);
    // Written, not only locked: an ending of the membership at the same time (unlink_user,
    // delete_user, delete_tenant) then waits for this transaction and ends the team membership
    // it adds, or, under REPEATABLE READ, fails with 40001 rather than leave it behind; one that
    // came first leaves no live row here (P0002).
    let member = write_returning(
        "UPDATE nile_auth.tenant_users SET updated = updated WHERE tenant_id = $1 AND user_id = $2 AND deleted IS NULL RETURNING true",
        &[to_pg(access.tenant).into(), to_pg(user).into()],
        |row| row.get::<bool>(1),
    );
    if member.is_none() {
        AuthError::NotFound(format!("user {user} not found")).raise();
    }
    let added = write_returning(
        "INSERT INTO nile_auth.team_members (team_id, user_id, tenant_id)
         SELECT $1, tu.user_id, tu.tenant_id FROM nile_auth.tenant_users tu
          WHERE tu.tenant_id = $3 AND tu.user_id = $2 AND tu.deleted IS NULL
         ON CONFLICT (team_id, user_id) DO UPDATE SET created = nile_auth.team_members.created
         RETURNING xmax = 0",
        &[to_pg(team).into(), to_pg(user).into(), to_pg(access.tenant).into()],
        |row| row.get::<bool>(1),
    )
    .unwrap_or_else(|| AuthError::NotFound(format!("user {user} not found")).raise());
    if added == Some(true) {
        record("team.member_added", access.caller.user(), Some(access.tenant), Some(&team.to_string()), json!({"userId": user}));
    }
    team_json(team)
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn remove_team_member(team_id: Option<pgrx::Uuid>, user_id: Option<pgrx::Uuid>) -> bool {
    let team = from_pg(required(team_id, "team_id").or_raise());
    let user = from_pg(required(user_id, "user_id").or_raise());
    let access = manage(team);
    let removed = write_returning(
        "DELETE FROM nile_auth.team_members WHERE team_id = $1 AND user_id = $2 RETURNING true",
        &[to_pg(team).into(), to_pg(user).into()],
        |row| row.get::<bool>(1),
    );
    if removed.is_none() {
        AuthError::NotFound(format!("user {user} is not in team {team}")).raise();
    }
    record("team.member_removed", access.caller.user(), Some(access.tenant), Some(&team.to_string()), json!({"userId": user}));
    true
}

#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn delete_team(team_id: Option<pgrx::Uuid>) -> bool {
    let team = from_pg(required(team_id, "team_id").or_raise());
    let access = manage(team);
    write("DELETE FROM nile_auth.teams WHERE id = $1", &[to_pg(team).into()]);
    record("team.deleted", access.caller.user(), Some(access.tenant), Some(&team.to_string()), json!({}));
    true
}
