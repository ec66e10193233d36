//! The current tenant (`nile.tenant_id`) and who may use it: the hot path behind every tenant
//! isolation policy (`tenant_id()`, `has_role()`), `set_tenant`, and the per-call access check
//! the tenant functions share. An end user may use only tenants they are a live member of (and
//! a token from a tenant API key only that tenant); the trusted backend may use any live tenant.

use crate::caller::{Caller, caller, caller_and_scope};
use crate::db::{from_pg, read_one_prepared, to_pg};
use crate::errors::{AuthError, AuthResult, OrRaise, required};
use crate::privilege::as_extension_owner;
use crate::settings::{AUTH_TOKEN, TENANT_ID, set_session_setting, with_session_setting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use crate::cache::ClockCache;
use std::rc::Rc;
use uuid::Uuid;

/// Roles that administer a tenant: remove others, change roles, rename, delete.
const ADMIN_ROLES: [&str; 2] = ["owner", "admin"];

thread_local! {
    /// Live memberships (user, tenant) a probe has confirmed, with their roles, kept across
    /// transactions. Any change that can end a membership or change its roles broadcasts an
    /// invalidation of tenant_users (sql/finalize.sql, `invalidation`), and the callback below
    /// bumps the epoch, so the map is dropped before this backend's next transaction uses it: a
    /// removed member loses access, and a demoted one their role, at their next transaction
    /// without a probe in every transaction.
    /// Bounded by nile_auth.membership_cache_size; when full, the least recently used give way.
    static MEMBERS: RefCell<(u64, ClockCache<(Uuid, Uuid), Rc<[String]>>)> = RefCell::new((0, ClockCache::new()));
    static MEMBERS_EPOCH: Cell<u64> = const { Cell::new(0) };
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

/// The roles of `user`'s live membership in `tenant` (`None`: not a live member), and whether
/// the answer may be cached: one probe of tenant_users' primary key, instead of an SPI query
/// (SPI's executor setup was most of the cost in bench arm 3). Reading the heap directly needs no privilege switch. A deleted
/// tenant's memberships are ended by a trigger (sql/finalize.sql), so the membership row alone
/// decides.
///
/// The probe reads with a snapshot taken now, not the statement's: an invalidation this backend
/// has already processed belongs to a commit that snapshot sees, so a cached answer can never
/// predate an invalidation that was meant to drop it. In parallel mode no new snapshot may be
/// taken; the statement's is used and the answer is not cached.
fn probe_membership(user: Uuid, tenant: Uuid) -> (Option<Vec<String>>, bool) {
    use pgrx::datum::{FromDatum, IntoDatum};
    let Some(TenantUsers { relid, index_oid, deleted_attnum, roles_attnum }) = tenant_users_catalog() else {
        return (None, false);
    };
    // SAFETY: called during query execution inside a transaction; every snapshot, open, scan
    // and slot below is released before returning, and an error midway is cleaned up by
    // transaction abort like any executor scan.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(relid, lock);
        let index = pg_sys::index_open(index_oid, lock);
        let cacheable = !pg_sys::IsInParallelMode();
        let snapshot = if cacheable {
            pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot())
        } else if pg_sys::ActiveSnapshotSet() {
            pg_sys::RegisterSnapshot(pg_sys::GetActiveSnapshot())
        } else {
            pg_sys::RegisterSnapshot(pg_sys::GetTransactionSnapshot())
        };
        let mut keys: [pg_sys::ScanKeyData; 2] = std::mem::zeroed();
        let key_values = [to_pg(tenant).into_datum(), to_pg(user).into_datum()];
        for (i, value) in key_values.into_iter().enumerate() {
            pg_sys::ScanKeyInit(
                &mut keys[i],
                (i + 1) as pg_sys::AttrNumber,
                pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                pg_sys::Oid::from(pg_sys::F_UUID_EQ),
                value.unwrap_or(pg_sys::Datum::from(0)),
            );
        }
        let scan = pg_sys::index_beginscan(rel, index, snapshot, 2, 0);
        pg_sys::index_rescan(scan, keys.as_mut_ptr(), 2, std::ptr::null_mut(), 0);
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let mut live = None;
        let mut own_write = false;
        let last_attnum = deleted_attnum.max(roles_attnum);
        while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
            if ((*slot).tts_nvalid as i32) < last_attnum as i32 {
                pg_sys::slot_getsomeattrs_int(slot, last_attnum as i32);
            }
            if *(*slot).tts_isnull.add(deleted_attnum as usize - 1) {
                // A row this transaction wrote (an accepted invitation, a membership added
                // again) may yet roll back, and an INSERT sends no invalidation: use it, never
                // cache it.
                let tuple = pg_sys::ExecFetchSlotHeapTuple(slot, false, std::ptr::null_mut());
                own_write = pg_sys::TransactionIdIsCurrentTransactionId((*(*tuple).t_data).t_choice.t_heap.t_xmin);
                let at = roles_attnum as usize - 1;
                // Copied out (detoasted) while the slot still holds the tuple.
                live = Some(
                    Vec::<String>::from_datum(*(*slot).tts_values.add(at), *(*slot).tts_isnull.add(at)).unwrap_or_default(),
                );
                break;
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        (live, cacheable && !own_write)
    }
}

/// Where tenant_users lives, looked up once per backend: three catalog lookups saved on each
/// membership probe. Dropped with the memberships when tenant_users' relcache entry is
/// invalidated (DROP/CREATE EXTENSION gives it a new OID).
#[derive(Clone, Copy)]
struct TenantUsers {
    relid: pg_sys::Oid,
    index_oid: pg_sys::Oid,
    deleted_attnum: pg_sys::AttrNumber,
    roles_attnum: pg_sys::AttrNumber,
}

thread_local! {
    static TENANT_USERS: Cell<Option<TenantUsers>> = const { Cell::new(None) };
}

fn tenant_users_catalog() -> Option<TenantUsers> {
    if let Some(found) = TENANT_USERS.get() {
        return Some(found);
    }
    // SAFETY: catalog lookups by name inside a transaction.
    let found = unsafe {
        let namespace = pg_sys::get_namespace_oid(c"nile_auth".as_ptr(), false);
        let relid = pg_sys::get_relname_relid(c"tenant_users".as_ptr(), namespace);
        if relid == pg_sys::InvalidOid {
            return None;
        }
        let deleted_attnum = pg_sys::get_attnum(relid, c"deleted".as_ptr());
        let roles_attnum = pg_sys::get_attnum(relid, c"roles".as_ptr());
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let index_oid = pg_sys::RelationGetPrimaryKeyIndex(rel);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        if deleted_attnum <= 0 || roles_attnum <= 0 || index_oid == pg_sys::InvalidOid {
            return None;
        }
        TenantUsers { relid, index_oid, deleted_attnum, roles_attnum }
    };
    TENANT_USERS.set(Some(found));
    Some(found)
}

/// Relcache callback: runs while invalidation messages are processed, so it only drops plain
/// values (no catalog access is allowed here). Before tenant_users' OID is known, any
/// invalidation counts, so none can slip past while it is being looked up.
#[pg_guard]
unsafe extern "C-unwind" fn forget_tenant_users(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || TENANT_USERS.get().is_none_or(|t| relid == t.relid) {
        TENANT_USERS.set(None);
        MEMBERS_EPOCH.set(MEMBERS_EPOCH.get().wrapping_add(1));
    }
}

pub fn register_invalidation_callback() {
    // SAFETY: called once from _PG_init on the main thread.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(forget_tenant_users), pg_sys::Datum::from(0)) };
}

/// The roles of `user`'s live membership in `tenant`, or `None`: from the cache, else probed.
fn member_roles_cached(user: Uuid, tenant: Uuid) -> Option<Rc<[String]>> {
    let epoch = MEMBERS_EPOCH.get();
    let hit = MEMBERS.with_borrow_mut(|(seen, members)| {
        if *seen != epoch {
            members.clear();
            *seen = epoch;
        }
        members.get(&(user, tenant)).cloned()
    });
    if hit.is_some() {
        return hit;
    }
    let (roles, cacheable) = probe_membership(user, tenant);
    let roles: Rc<[String]> = roles?.into();
    // An invalidation processed during the probe (its locks read the queue) may be the one
    // that ended this membership: then the answer is used once and not kept. Nor is an answer
    // read through a transaction snapshot, which may predate an ending already broadcast.
    if cacheable && MEMBERS_EPOCH.get() == epoch && !crate::identity::uses_transaction_snapshot() {
        let capacity = usize::try_from(crate::settings::MEMBERSHIP_CACHE_SIZE.get()).unwrap_or(0);
        MEMBERS.with_borrow_mut(|(_, members)| members.insert(Rc::new((user, tenant)), roles.clone(), capacity));
    }
    Some(roles)
}

fn not_a_member(user: Uuid, tenant: Uuid) -> AuthError {
    AuthError::PermissionDenied(format!("user {user} is not a member of tenant {tenant}"))
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

/// May this session use `tenant` as its current tenant? Shared by `tenant_id()` and
/// `set_tenant()`, so both refuse the same things.
fn check_tenant_use(tenant: Uuid) -> AuthResult<Caller> {
    match caller_and_scope()? {
        (Caller::TrustedBackend, _) => Ok(Caller::TrustedBackend),
        (Caller::User(_), Some(scope)) if scope != tenant => {
            Err(AuthError::PermissionDenied(format!("this token is limited to tenant {scope}")))
        }
        (Caller::User(user), _) if member_roles_cached(user, tenant).is_some() => Ok(Caller::User(user)),
        (Caller::User(user), _) => Err(not_a_member(user, tenant)),
    }
}

pub fn require_current_tenant() -> Uuid {
    current_tenant().or_raise().unwrap_or_else(|| {
        AuthError::ObjectNotInPrerequisiteState("no tenant is set: SET nile.tenant_id or call nile_auth.set_tenant()".into())
            .raise()
    })
}

/// The current tenant, or error 55000 when none is set: for `list_users()` (sql/listings.sql).
#[pg_extern(stable, parallel_restricted, name = "_require_tenant_id")]
fn require_tenant_id_sql() -> pgrx::Uuid {
    to_pg(require_current_tenant())
}

/// The current tenant, or NULL. Used by every tenant isolation policy, so it stays cheap: a
/// setting read, and for end users a cached membership (see `MEMBERS`).
#[pg_extern(stable, parallel_restricted, name = "tenant_id")]
fn tenant_id_sql() -> Option<pgrx::Uuid> {
    current_tenant().or_raise().map(to_pg)
}

/// Whether the caller holds `role` in the current tenant (or in `tenant_id`): for application
/// policies ("only owners and admins may DELETE"). True for the trusted backend; false with no
/// tenant, outside a tenant API key's tenant, or for a non-member. Cached with the membership
/// (see `MEMBERS`), so a policy pays a hash lookup per call. 28000 without a verified identity,
/// as for tenant_id().
#[pg_extern(stable, parallel_restricted)]
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
#[pg_extern(stable, parallel_restricted)]
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
    set_session_setting(AUTH_TOKEN, token, true);
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
