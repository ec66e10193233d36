//! What an end user sees of the built-in tables tenants and users (their policies,
//! sql/builtin_policies.sql): the tenants they are a live member of, and the users who share one
//! with them; with a token limited to one tenant (a tenant API key), that tenant only. Per-row
//! functions rather than a scalar subquery in the policy, which Citus refuses on its tables.

use super::context::check_tenant_use;
use crate::caller::{Caller, caller_and_scope};
use crate::db::{from_pg, read_all_prepared, to_pg};
use crate::privilege::as_extension_owner;
use crate::probe::{Statement, StatementMemo};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use uuid::Uuid;

/// Whether the caller sees tenant `id`: the trusted backend sees every tenant. A token that does
/// not verify sees none (policies raise nothing).
#[pg_extern(stable, name = "_sees_tenant")]
fn sees_tenant(id: pgrx::Uuid) -> bool {
    check_tenant_use(from_pg(id)).is_ok()
}

thread_local! {
    /// The users a caller (user, scope) sees, read once per statement (`Statement`).
    static VISIBLE_USERS: RefCell<StatementMemo<(Uuid, Option<Uuid>), Rc<HashSet<Uuid>>>> = const { RefCell::new(StatementMemo::new()) };
}

/// Whether the caller sees user `id`: themselves, and whoever shares a live tenant with them.
#[pg_extern(stable, name = "_sees_user")]
fn sees_user(id: pgrx::Uuid) -> bool {
    let other = from_pg(id);
    let (user, scope) = match caller_and_scope() {
        Ok((Caller::TrustedBackend, _)) => return true,
        Ok((Caller::User(user), scope)) => (user, scope),
        Err(_) => return false,
    };
    user == other || visible_users(user, scope).contains(&other)
}

fn visible_users(user: Uuid, scope: Option<Uuid>) -> Rc<HashSet<Uuid>> {
    let statement = Statement::current();
    if let Some(seen) = VISIBLE_USERS.with_borrow(|memo| memo.get(statement, &(user, scope))) {
        return seen;
    }
    let seen: Rc<HashSet<Uuid>> = as_extension_owner(|| {
        read_all_prepared::<pgrx::Uuid>(
            "SELECT DISTINCT other.user_id
               FROM nile_auth.tenant_users mine
               JOIN nile_auth.tenant_users other ON other.tenant_id = mine.tenant_id
              WHERE mine.user_id = $1 AND mine.deleted IS NULL AND other.deleted IS NULL
                AND mine.tenant_id = COALESCE($2, mine.tenant_id)",
            &[to_pg(user).into(), scope.map(to_pg).into()],
        )
    })
    .into_iter()
    .map(from_pg)
    .collect::<HashSet<_>>()
    .into();
    VISIBLE_USERS.with_borrow_mut(|memo| memo.set(statement, (user, scope), seen.clone()));
    seen
}
