//! Running a lookup with the extension owner's rights, the way SECURITY DEFINER does, without
//! making the calling SQL function SECURITY DEFINER.
//!
//! Why: `user_id()` and `tenant_id()` sit inside row-level-security policies. A SECURITY
//! DEFINER function with `SET search_path` pays a GUC save/restore on every call and is never
//! inlined; these functions only need elevated rights on a cache miss, so they switch there.

use crate::errors::OrRaise;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

fn extension_owner() -> pg_sys::Oid {
    if let Some(owner) = OWNER.get() {
        return owner;
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'nile_auth'",
    )
    .or_raise()
    .unwrap_or_else(|| {
        crate::errors::AuthError::ObjectNotInPrerequisiteState("extension nile_auth is not installed in this database".into()).raise()
    });
    OWNER.set(Some(owner));
    owner
}

/// Runs `f` as the extension owner with only `pg_catalog` on the search path, then restores the
/// caller's identity and path. If `f` raises an error, (sub)transaction abort restores both, as
/// it does for SECURITY DEFINER functions.
///
/// The path is pushed as an override (PG15's PushOverrideSearchPath, what SPI and the plan cache
/// use) rather than set as a GUC: a list push and pop instead of parsing and assigning the
/// setting twice, on a path that runs once per transaction for every end user. Plans kept by
/// `db::read_row_prepared` are made and run under this same path, so they are never re-planned.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: plain backend-local state calls on the main thread, paired below.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(owner, saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    let mut path = pg_sys::OverrideSearchPath {
        schemas: std::ptr::null_mut(),
        addCatalog: true,
        addTemp: false,
        generation: 0,
    };
    // SAFETY: the struct is copied by Postgres; popped below or by (sub)transaction abort.
    unsafe { pg_sys::PushOverrideSearchPath(&mut path) };
    let result = f();
    unsafe {
        pg_sys::PopOverrideSearchPath();
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}
