//! Small SPI helpers. Reads go through `Spi::connect` + `select`, which, unlike pgrx's
//! `Spi::get_one_with_args`, does not assign a transaction id: identity checks run inside
//! read-only transactions and on hot paths. No row reads as `None` (pgrx would error).

use crate::errors::OrRaise;
use pgrx::datum::{DatumWithOid, FromDatum, IntoDatum};
use pgrx::prelude::*;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiHeapTupleData, SpiResult};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The first row of a read-only query, mapped by `f`, or `None` when there is no row.
pub fn read_row<R>(query: &str, args: &[DatumWithOid], f: impl FnOnce(&SpiHeapTupleData) -> SpiResult<R>) -> Option<R> {
    Spi::connect(|client| {
        let mut rows = client.select(query, Some(1), args)?;
        rows.next().map(|row| f(&row)).transpose()
    })
    .or_raise()
}

/// Column 1 of every row of a read-only query (NULLs skipped).
pub fn read_all<T: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid]) -> Vec<T> {
    Spi::connect(|client| {
        client.select(query, None, args)?.map(|row| row.get::<T>(1)).collect::<Result<Vec<_>, _>>()
    })
    .or_raise()
    .into_iter()
    .flatten()
    .collect()
}

thread_local! {
    /// Plans kept for the backend's lifetime, keyed by query text (see `read_row_prepared`).
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Like `read_row`, but the statement is planned once per backend and kept: for the lookups on
/// hot paths (token verification, membership checks). Callers run under the pinned
/// `search_path`, and Postgres' plan cache re-plans with the path a plan was made under, so a
/// kept plan cannot be redirected by a caller's `search_path` later.
pub fn read_row_prepared<R>(
    query: &'static str,
    args: &[DatumWithOid],
    f: impl FnOnce(&SpiHeapTupleData) -> SpiResult<R>,
) -> Option<R> {
    Spi::connect(|client| {
        let plan = kept_plan(client, query, args, false)?;
        let mut rows = client.select(&*plan, Some(1), args)?;
        rows.next().map(|row| f(&row)).transpose()
    })
    .or_raise()
}

/// `read_all` with a kept plan (see `read_row_prepared`); for the listing functions.
pub fn read_all_prepared<T: FromDatum + IntoDatum>(query: &'static str, args: &[DatumWithOid]) -> Vec<T> {
    Spi::connect(|client| {
        let plan = kept_plan(client, query, args, false)?;
        client.select(&*plan, None, args)?.map(|row| row.get::<T>(1)).collect::<Result<Vec<_>, _>>()
    })
    .or_raise()
    .into_iter()
    .flatten()
    .collect()
}

/// The backend's kept plan for `query`, prepared on first use with the argument types of `args`.
/// An Rc, so the plan stays alive while it runs without the map staying borrowed.
fn kept_plan(
    client: &pgrx::spi::SpiClient,
    query: &'static str,
    args: &[DatumWithOid],
    mutating: bool,
) -> SpiResult<Rc<OwnedPreparedStatement>> {
    if let Some(plan) = PLANS.with_borrow(|plans| plans.get(query).cloned()) {
        return Ok(plan);
    }
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let prepared = if mutating { client.prepare_mut(query, &types)? } else { client.prepare(query, &types)? };
    let plan = Rc::new(prepared.keep());
    PLANS.with_borrow_mut(|plans| plans.insert(query, plan.clone()));
    Ok(plan)
}

pub fn read_one_prepared<T: FromDatum + IntoDatum>(query: &'static str, args: &[DatumWithOid]) -> Option<T> {
    read_row_prepared(query, args, |row| row.get::<T>(1)).flatten()
}

pub fn read_one<T: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid]) -> Option<T> {
    read_row(query, args, |row| row.get::<T>(1)).flatten()
}

/// The first row a writing query (INSERT/UPDATE ... RETURNING) returns, mapped by `f`, or `None`.
pub fn write_returning<R>(query: &str, args: &[DatumWithOid], f: impl FnOnce(&SpiHeapTupleData) -> SpiResult<R>) -> Option<R> {
    Spi::connect_mut(|client| {
        let mut rows = client.update(query, None, args)?;
        rows.next().map(|row| f(&row)).transpose()
    })
    .or_raise()
}

/// Whether this database's SQL objects are the library's own version. Between a package upgrade
/// and `ALTER EXTENSION nile_auth UPDATE` they are the previous release's: the tables added
/// since (the newest: nile_auth.sessions) do not exist yet. Once true, true for the backend.
pub fn schema_updated() -> bool {
    thread_local! { static UPDATED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; }
    if !UPDATED.get() && read_one::<bool>("SELECT pg_catalog.to_regclass('nile_auth.sessions') IS NOT NULL", &[]) == Some(true) {
        UPDATED.set(true);
    }
    UPDATED.get()
}

/// Whether Citus is installed in this database (its metadata table exists).
pub fn citus_installed() -> bool {
    // SAFETY: a catalog-cache lookup inside a transaction.
    let relid = unsafe { pg_sys::get_relname_relid(c"pg_dist_partition".as_ptr(), pg_sys::PG_CATALOG_NAMESPACE.into()) };
    relid != pg_sys::InvalidOid
}

pub fn write(query: &str, args: &[DatumWithOid]) {
    Spi::run_with_args(query, args).or_raise()
}

/// `write` with a kept plan (see `read_row_prepared`); for writes on the membership and audit
/// paths, which run on every membership change.
pub fn write_prepared(query: &'static str, args: &[DatumWithOid]) {
    Spi::connect_mut(|client| {
        let plan = kept_plan(client, query, args, true)?;
        client.update(&*plan, None, args).map(drop)
    })
    .or_raise()
}

/// The time now, not the transaction's start, to pass to a write as a value: Citus refuses
/// volatile functions such as clock_timestamp() in UPDATEs of its tables.
pub fn clock_now() -> pgrx::datum::TimestampWithTimeZone {
    // SAFETY: reads the system clock, as clock_timestamp() does.
    timestamptz(unsafe { pg_sys::GetCurrentTimestamp() })
}

/// A timestamptz from PostgreSQL's microseconds since 2000.
pub fn timestamptz(microseconds: pg_sys::TimestampTz) -> pgrx::datum::TimestampWithTimeZone {
    pgrx::datum::TimestampWithTimeZone::try_from(microseconds)
        .unwrap_or_else(|_| crate::errors::AuthError::Internal("timestamp out of range".into()).raise())
}

pub fn to_pg(id: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*id.as_bytes())
}

pub fn from_pg(id: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}
