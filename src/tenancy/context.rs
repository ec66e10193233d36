//! The current tenant (`nile.tenant_id`) and who may use it: the hot path behind every tenant
//! isolation policy (`tenant_id()`, `has_role()`), `set_tenant`, and the per-call access check
//! the tenant functions share. An end user may use only tenants they are a live member of (and
//! a token from a tenant API key only that tenant); the trusted backend may use any live tenant.

use crate::caller::{Caller, caller, caller_and_scope};
use crate::db::{from_pg, read_one_prepared, to_pg};
use crate::errors::{AuthError, AuthResult, OrRaise, required};
use crate::privilege::as_extension_owner;
use crate::settings::{TENANT_ID, set_session_setting, with_session_setting};
use crate::cache::EpochCache;
use crate::probe::{self, Caching, StatementMemo, TENANT_USERS};
use pgrx::datum::IntoDatum;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use uuid::Uuid;

/// Roles that administer a tenant: remove others, change roles, rename, delete.
const ADMIN_ROLES: [&str; 2] = ["owner", "admin"];

thread_local! {
    /// Live memberships (user, tenant) a probe has confirmed, with their roles, kept across
    /// transactions. Any change that can end a membership or change its roles broadcasts an
    /// invalidation of tenant_users (sql/finalize.sql, `invalidation`), which moves its epoch
    /// (`probe`), so the map is dropped before this backend's next transaction uses it: a
    /// removed member loses access, and a demoted one their role, at their next transaction
    /// without a probe in every transaction.
    /// Bounded by nile_auth.membership_cache_size; when full, the least recently used give way.
    static MEMBERS: RefCell<EpochCache<(Uuid, Uuid), Rc<[String]>>> = RefCell::new(EpochCache::new());
}

/// The user's roles in a live tenant they are a live member of; `None` if not a member.
pub fn member_roles(user: Uuid, tenant: Uuid) -> Option<Vec<String>> {
    as_extension_owner(|| {
        read_one_prepared::<Vec<String>>(
            "SELECT tu.roles FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id
              WHERE tu.tenant_id = $1 AND tu.user_id = $2 AND tu.deleted IS NULL AND t.deleted IS NULL",
            &[to_pg(tenant).into(), to_pg(user).into()],
        )
    })
}

/// The roles of `user`'s live membership in `tenant`, or `None`: from the cache, else read from
/// tenant_users' primary key (`probe`). A deleted tenant's memberships end with it
/// (`manage::end_memberships`), so the membership row alone decides.
fn member_roles_cached(user: Uuid, tenant: Uuid) -> Option<Rc<[String]>> {
    if probe::in_parallel_mode() {
        return member_roles_in_statement(user, tenant);
    }
    let capacity = usize::try_from(crate::settings::MEMBERSHIP_CACHE_SIZE.get()).unwrap_or(0);
    probe::through_cache(&MEMBERS, &TENANT_USERS, (user, tenant), Caching::now(), capacity, || probe_membership(user, tenant))
        .map(|(roles, _)| roles)
}

fn probe_membership(user: Uuid, tenant: Uuid) -> Option<probe::Probe<Rc<[String]>>> {
    let key = [to_pg(tenant).into_datum()?, to_pg(user).into_datum()?];
    probe::probe(&TENANT_USERS, &key, |row| row.is_null(0).then(|| row.get::<Vec<String>>(1).unwrap_or_default().into()))
}

thread_local! {
    static IN_STATEMENT: RefCell<StatementMemo<(Uuid, Uuid), Option<Rc<[String]>>>> = const { RefCell::new(StatementMemo::new()) };
}

/// In parallel mode, the membership as the statement's snapshot shows it, read once per
/// statement and process, never from the cache: so a worker and its leader agree (see
/// `identity::verify`).
fn member_roles_in_statement(user: Uuid, tenant: Uuid) -> Option<Rc<[String]>> {
    let statement = probe::Statement::current();
    if let Some(answer) = IN_STATEMENT.with_borrow(|m| m.get(statement, &(user, tenant))) {
        return answer;
    }
    let answer = probe_membership(user, tenant).and_then(|p| p.found);
    IN_STATEMENT.with_borrow_mut(|m| m.set(statement, (user, tenant), answer.clone()));
    answer
}

/// The tenant this session may use now, checked: `None` when unset.
pub fn current_tenant() -> AuthResult<Option<Uuid>> {
    let tenant = with_session_setting(TENANT_ID, |value| {
        value.map(|v| Uuid::parse_str(v).map_err(|_| AuthError::InvalidUuid(v.to_owned()))).transpose()
    })?;
    let Some(tenant) = tenant else { return Ok(None) };
    check_tenant_use(tenant)?;
    Ok(Some(tenant))
}

/// May this session use `tenant` as its current tenant? Shared by `tenant_id()`, `set_tenant()`
/// and the tenants policy (`visibility`), so all refuse the same things.
pub(super) fn check_tenant_use(tenant: Uuid) -> AuthResult<Caller> {
    match caller_and_scope()? {
        (Caller::TrustedBackend, _) => Ok(Caller::TrustedBackend),
        (Caller::User(_), Some(scope)) if scope != tenant => {
            Err(AuthError::PermissionDenied(format!("this token is limited to tenant {scope}")))
        }
        (Caller::User(user), _) if member_roles_cached(user, tenant).is_some() => Ok(Caller::User(user)),
        (Caller::User(user), _) => Err(AuthError::NotAMember { user, tenant }),
    }
}

/// The current tenant. With none set: 28000 for an end-user role without a verified token (the
/// missing identity comes first: a 401, not "pick a tenant"), else 55000 "no tenant is set".
pub fn require_current_tenant() -> Uuid {
    current_tenant().or_raise().unwrap_or_else(|| {
        caller_and_scope().or_raise();
        AuthError::NoTenant.raise()
    })
}

/// `require_current_tenant()` for SQL: the check of every tenant isolation policy (src/policies.rs)
/// and `list_users()` (sql/listings.sql). Application roles run it inside their writes, so it must
/// stay executable by PUBLIC.
#[pg_extern(stable, parallel_restricted, name = "_require_tenant_id")]
fn require_tenant_id_sql() -> pgrx::Uuid {
    to_pg(require_current_tenant())
}

/// The current tenant, or NULL. Used by every tenant isolation policy, so it stays cheap: a
/// setting read, and for end users a cached membership (see `MEMBERS`).
#[pg_extern(stable, parallel_safe, name = "tenant_id")]
fn tenant_id_sql() -> Option<pgrx::Uuid> {
    current_tenant().or_raise().map(to_pg)
}

/// Whether the caller holds `role` in the current tenant (or in `tenant_id`): for application
/// policies ("only owners and admins may DELETE"). True for the trusted backend; false with no
/// tenant, outside a tenant API key's tenant, or for a non-member. Cached with the membership
/// (see `MEMBERS`), so a policy pays a hash lookup per call. 28000 without a verified identity,
/// as for tenant_id().
#[pg_extern(stable, parallel_safe)]
fn has_role(role: Option<&str>, tenant_id: default!(Option<pgrx::Uuid>, "NULL")) -> bool {
    let role = required(role, "role").or_raise();
    caller_holds_role(role, tenant_id.map(from_pg)).or_raise()
}

fn caller_holds_role(role: &str, tenant: Option<Uuid>) -> AuthResult<bool> {
    let (user, scope) = match caller_and_scope()? {
        (Caller::TrustedBackend, _) => return Ok(true),
        (Caller::User(user), scope) => (user, scope),
    };
    let tenant = match tenant {
        Some(tenant) => tenant,
        None => match current_tenant()? {
            Some(tenant) => tenant,
            None => return Ok(false),
        },
    };
    if scope.is_some_and(|s| s != tenant) {
        return Ok(false);
    }
    Ok(member_roles_cached(user, tenant).is_some_and(|roles| roles.iter().any(|r| r == role)))
}

/// True for a trusted application backend session (see module docs).
#[pg_extern(stable, parallel_safe)]
fn is_trusted_backend() -> bool {
    matches!(caller(), Ok(Caller::TrustedBackend))
}

fn tenant_exists(tenant: Uuid) -> bool {
    as_extension_owner(|| {
        read_one_prepared::<bool>("SELECT true FROM nile_auth.tenants WHERE id = $1 AND deleted IS NULL", &[to_pg(tenant).into()])
    }) == Some(true)
}

pub fn tenant_not_found(tenant: Uuid) -> AuthError {
    AuthError::NotFound(format!("tenant {tenant} not found"))
}

/// The checked way to set `nile.tenant_id`: refuses a tenant the session may not use.
#[pg_extern(volatile)]
fn set_tenant(tenant_id: Option<pgrx::Uuid>, is_local: default!(Option<bool>, false)) -> pgrx::Uuid {
    let tenant = from_pg(required(tenant_id, "tenant_id").or_raise());
    let is_local = required(is_local, "is_local").or_raise();
    if check_tenant_use(tenant).or_raise() == Caller::TrustedBackend && !tenant_exists(tenant) {
        tenant_not_found(tenant).raise();
    }
    set_session_setting(TENANT_ID, &tenant.to_string(), is_local);
    to_pg(tenant)
}

/// The documented way to set the request context: both settings for the current transaction
/// only, checked at once, from one call that takes the token as a bind parameter (so it never
/// appears in the statement text, pg_stat_activity or pg_stat_statements). 28000 for a token
/// that does not verify, 42501 for a tenant the user may not use; NULL `tenant_id` clears the
/// tenant for the transaction. Returns the user's id.
#[pg_extern(volatile)]
fn set_context(token: Option<&str>, tenant_id: default!(Option<pgrx::Uuid>, "NULL")) -> pgrx::Uuid {
    let token = required(token, "token").or_raise();
    crate::identity::set_token(token, true);
    // Set first, then checked through the same path every later statement takes (an empty
    // token set this way is a token that does not verify): an error aborts the transaction,
    // which undoes the settings.
    let (caller, _) = caller_and_scope().or_raise();
    let Caller::User(user) = caller else { AuthError::InvalidToken.raise() };
    match tenant_id.map(from_pg) {
        Some(tenant) => {
            check_tenant_use(tenant).or_raise();
            set_session_setting(TENANT_ID, &tenant.to_string(), true);
        }
        None => set_session_setting(TENANT_ID, "", true),
    }
    to_pg(user)
}

/// What the caller may do in one tenant, looked up once per call.
#[derive(Clone, Copy)]
pub struct Access {
    pub caller: Caller,
    pub tenant: Uuid,
    /// The trusted backend, or an owner or admin of the tenant.
    pub admin: bool,
}

impl Access {
    pub fn require_admin(self) -> Self {
        if !self.admin {
            AuthError::PermissionDenied(format!("only an owner or admin of tenant {} may do this", self.tenant)).raise();
        }
        self
    }
}

/// The caller's access to `tenant`; P0002 if an end user is not a member (no existence leak).
pub fn access(tenant: Uuid) -> Access {
    try_access(tenant).or_raise()
}

/// `access`, for a caller that names what it looked up (a team, an invitation) rather than the
/// tenant: a tenant the caller may not use reads as `not_found()`; other errors stay as they are.
pub fn access_or(tenant: Uuid, not_found: impl FnOnce() -> AuthError) -> Access {
    match try_access(tenant) {
        Ok(access) => access,
        Err(AuthError::NotFound(_)) => not_found().raise(),
        Err(e) => e.raise(),
    }
}

fn try_access(tenant: Uuid) -> AuthResult<Access> {
    let (caller, scope) = caller_and_scope()?;
    let admin = match caller {
        Caller::TrustedBackend if !tenant_exists(tenant) => return Err(tenant_not_found(tenant)),
        Caller::TrustedBackend => true,
        Caller::User(_) if scope.is_some_and(|s| s != tenant) => return Err(tenant_not_found(tenant)),
        Caller::User(user) => member_roles(user, tenant)
            .ok_or_else(|| tenant_not_found(tenant))?
            .iter()
            .any(|r| ADMIN_ROLES.contains(&r.as_str())),
    };
    Ok(Access { caller, tenant, admin })
}
