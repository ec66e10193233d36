//! One row by primary key, read straight from the index and the heap instead of through SPI:
//! what a cache miss on the hot path costs (a membership, a user's token state, a session, a
//! signing key). SPI's executor start-up was most of the cost of a miss.
//!
//! Each table here also has an epoch, bumped when this backend processes an invalidation of
//! the table (sql/finalize.sql's triggers send them, `invalidation`): a cache of answers read
//! from the table is dropped when its epoch moves.
//!
//! Reads use a snapshot taken now, not the statement's: an invalidation this backend has already
//! processed belongs to a commit that such a snapshot sees, so an answer read here never
//! predates an invalidation that was meant to drop it. `Probe::cacheable` is false for the
//! answers that must not be kept: one read in parallel mode, where no new snapshot may be taken
//! (the statement's is used), and a row this transaction wrote, which may yet roll back (an
//! INSERT sends no invalidation). Reading the heap directly needs no privilege; callers never
//! hand a row to SQL.

use crate::cache::EpochCache;
use pgrx::datum::FromDatum;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::hash::Hash;
use std::thread::LocalKey;

/// A table read on the hot path: its name in schema nile_auth, the equality function of each
/// primary key column (in key order), and the columns callers read (by position in `columns`),
/// with their types, checked so that a row is never read as what it is not.
pub struct Table {
    slot: usize,
    name: &'static CStr,
    key_eq: &'static [u32],
    columns: &'static [(&'static CStr, u32)],
}

const TIMESTAMPTZ: u32 = pg_sys::TIMESTAMPTZOID.to_u32();
pub static TENANT_USERS: Table = Table {
    slot: 0,
    name: c"tenant_users",
    key_eq: &[pg_sys::F_UUID_EQ, pg_sys::F_UUID_EQ],
    columns: &[(c"deleted", TIMESTAMPTZ), (c"roles", pg_sys::TEXTARRAYOID.to_u32())],
};
pub static USERS: Table = Table {
    slot: 1,
    name: c"users",
    key_eq: &[pg_sys::F_UUID_EQ],
    columns: &[(c"deleted", TIMESTAMPTZ), (c"deactivated", TIMESTAMPTZ), (c"tokens_valid_after", TIMESTAMPTZ)],
};
pub static SESSIONS: Table = Table {
    slot: 2,
    name: c"sessions",
    key_eq: &[pg_sys::F_UUID_EQ],
    columns: &[(c"user_id", pg_sys::UUIDOID.to_u32()), (c"ended", TIMESTAMPTZ)],
};
pub static SIGNING_KEYS: Table = Table {
    slot: 3,
    name: c"signing_keys",
    key_eq: &[pg_sys::F_TEXTEQ],
    columns: &[
        (c"alg", pg_sys::TEXTOID.to_u32()),
        (c"state", pg_sys::TEXTOID.to_u32()),
        (c"public_key", pg_sys::BYTEAOID.to_u32()),
        (c"secret", pg_sys::BYTEAOID.to_u32()),
        (c"retired", TIMESTAMPTZ),
    ],
};
const TABLES: usize = 4;
const MAX_COLUMNS: usize = 5;

/// Where a table lives, looked up once: three catalog lookups saved on every probe.
#[derive(Clone, Copy)]
struct Resolved {
    relid: pg_sys::Oid,
    index: pg_sys::Oid,
    attnums: [pg_sys::AttrNumber; MAX_COLUMNS],
}

thread_local! {
    // Cells, not RefCells: the callback below runs inside table_open and other calls made
    // while this module is working, and must never find a borrow held.
    static RESOLVED: Cell<[Option<Resolved>; TABLES]> = const { Cell::new([None; TABLES]) };
    /// The last OID each table was found at, kept after an invalidation drops `RESOLVED`, so
    /// that other tables' invalidations do not bump its epoch meanwhile.
    static KNOWN: Cell<[Option<pg_sys::Oid>; TABLES]> = const { Cell::new([None; TABLES]) };
    static EPOCHS: Cell<[u64; TABLES]> = const { Cell::new([0; TABLES]) };
}

/// Moves when this backend processes an invalidation of `table` (or of every relation).
pub fn epoch(table: &Table) -> u64 {
    EPOCHS.get()[table.slot]
}

/// Relcache callback: runs while invalidation messages are processed, so it only changes
/// plain values (no catalog access is allowed here). Before a table's OID is known, any
/// invalidation counts, so none can slip past while it is being looked up; DROP/CREATE
/// EXTENSION gives the table a new OID, found again at the next probe.
#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let known = KNOWN.get();
    let mut resolved = RESOLVED.get();
    let mut epochs = EPOCHS.get();
    for slot in 0..TABLES {
        if relid == pg_sys::InvalidOid || known[slot].is_none_or(|k| k == relid) {
            resolved[slot] = None;
            epochs[slot] = epochs[slot].wrapping_add(1);
        }
    }
    RESOLVED.set(resolved);
    EPOCHS.set(epochs);
}

pub fn register_invalidation_callback() {
    // SAFETY: called once from _PG_init on the main thread.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0)) };
}

fn resolve(table: &Table) -> Option<Resolved> {
    if let Some(found) = RESOLVED.get()[table.slot] {
        return Some(found);
    }
    // SAFETY: catalog lookups by name inside a transaction.
    let found = unsafe {
        let namespace = pg_sys::get_namespace_oid(c"nile_auth".as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        let relid = local_rows_of(pg_sys::get_relname_relid(table.name.as_ptr(), namespace), table.name, namespace)?;
        let mut attnums = [0; MAX_COLUMNS];
        for (i, (column, type_oid)) in table.columns.iter().enumerate() {
            attnums[i] = pg_sys::get_attnum(relid, column.as_ptr());
            if attnums[i] <= 0 || pg_sys::get_atttype(relid, attnums[i]) != pg_sys::Oid::from(*type_oid) {
                return None;
            }
        }
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let index = pg_sys::RelationGetPrimaryKeyIndex(rel);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        if index == pg_sys::InvalidOid {
            return None;
        }
        Resolved { relid, index, attnums }
    };
    let mut known = KNOWN.get();
    known[table.slot] = Some(found.relid);
    KNOWN.set(known);
    let mut resolved = RESOLVED.get();
    resolved[table.slot] = Some(found);
    RESOLVED.set(resolved);
    Some(found)
}

/// Where this node keeps the rows of the table `relid` (`name` in `namespace`): the table itself,
/// or, once `distribute()` has made it a Citus reference table, the node's own copy of its one
/// shard, `<name>_<shardid>`; the table is then an empty shell. `None` (fail closed) when the
/// table does not exist, when Citus distributes it some other way, or when this node holds no
/// copy. Invalidations name the shard (the triggers fire there), so the epochs follow it too.
///
/// SAFETY: inside a transaction.
unsafe fn local_rows_of(relid: pg_sys::Oid, name: &CStr, namespace: pg_sys::Oid) -> Option<pg_sys::Oid> {
    if relid == pg_sys::InvalidOid {
        return None;
    }
    if !crate::db::citus_installed() {
        return Some(relid);
    }
    // Run as the extension owner: pg_catalog alone on the search path, whatever the caller's.
    let citus = crate::privilege::as_extension_owner(|| {
        crate::db::read_row_prepared(
            "SELECT p.partmethod::text, (SELECT min(s.shardid) FROM pg_catalog.pg_dist_shard s
                                          WHERE s.logicalrelid OPERATOR(pg_catalog.=) p.logicalrelid)
               FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
            &[relid.into()],
            |row| Ok((row.get::<String>(1)?, row.get::<i64>(2)?)),
        )
    });
    match citus {
        None => Some(relid),
        Some((Some(method), Some(shard))) if method == "n" => {
            let shard = std::ffi::CString::new(format!("{}_{shard}", name.to_string_lossy())).ok()?;
            let found = unsafe { pg_sys::get_relname_relid(shard.as_ptr(), namespace) };
            (found != pg_sys::InvalidOid).then_some(found)
        }
        Some(_) => None,
    }
}

/// A row found by a probe, valid only inside the callback it is passed to.
pub struct Row {
    slot: *mut pg_sys::TupleTableSlot,
    attnums: [pg_sys::AttrNumber; MAX_COLUMNS],
}

impl Row {
    /// Column `i` of the table's `columns`, copied out of the tuple; `None` when NULL.
    pub fn get<T: FromDatum>(&self, i: usize) -> Option<T> {
        let at = self.attnums[i] as usize - 1;
        // SAFETY: the slot holds a tuple deformed up to every listed column (see `probe`).
        unsafe { T::from_datum(*(*self.slot).tts_values.add(at), *(*self.slot).tts_isnull.add(at)) }
    }

    pub fn is_null(&self, i: usize) -> bool {
        let at = self.attnums[i] as usize - 1;
        // SAFETY: as in `get`.
        unsafe { *(*self.slot).tts_isnull.add(at) }
    }
}

/// The answer of a probe, and whether it may be cached (see the module docs).
pub struct Probe<T> {
    pub found: Option<T>,
    pub cacheable: bool,
}

/// Reads the rows of `table` whose primary key is `key` (datums in key order) and returns the
/// first that `read` maps to `Some`; `None` when the table or one of its columns does not
/// exist (an extension not yet updated: ALTER EXTENSION UPDATE adds them).
pub fn probe<T>(table: &Table, key: &[pg_sys::Datum], mut read: impl FnMut(&Row) -> Option<T>) -> Option<Probe<T>> {
    debug_assert_eq!(key.len(), table.key_eq.len());
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    // Where the table is was looked up before its lock was taken, and taking it reads pending
    // invalidations: if one was for this table (an ALTER, a DROP and CREATE EXTENSION), look
    // again, now under the lock. Twice moved: found nothing, fail closed.
    let mut attempts = 0;
    let (rel, Resolved { index: index_oid, attnums, .. }) = loop {
        let before = epoch(table);
        let resolved = resolve(table)?;
        // SAFETY: inside a transaction; closed below or by transaction abort.
        let rel = unsafe { pg_sys::table_open(resolved.relid, lock) };
        if epoch(table) == before {
            break (rel, resolved);
        }
        unsafe { pg_sys::table_close(rel, lock) };
        attempts += 1;
        if attempts == 2 {
            return Some(Probe { found: None, cacheable: false });
        }
    };
    let last_attnum = attnums[..table.columns.len()].iter().copied().max().unwrap_or(1) as i32;
    // SAFETY: called during query execution inside a transaction; the snapshot, relations, scan
    // and slot below are released before returning, and an error midway is cleaned up by
    // transaction abort like any executor scan.
    unsafe {
        let index = pg_sys::index_open(index_oid, lock);
        let parallel = pg_sys::IsInParallelMode();
        let snapshot = if !parallel {
            pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot())
        } else if pg_sys::ActiveSnapshotSet() {
            pg_sys::RegisterSnapshot(pg_sys::GetActiveSnapshot())
        } else {
            pg_sys::RegisterSnapshot(pg_sys::GetTransactionSnapshot())
        };
        let mut keys: Vec<pg_sys::ScanKeyData> = vec![std::mem::zeroed(); key.len()];
        for (i, (value, eq)) in key.iter().zip(table.key_eq).enumerate() {
            pg_sys::ScanKeyInit(
                &mut keys[i],
                (i + 1) as pg_sys::AttrNumber,
                pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                pg_sys::Oid::from(*eq),
                *value,
            );
            // Compare as the index sorts (text keys): ScanKeyInit assumes the C collation.
            keys[i].sk_collation = *(*index).rd_indcollation.add(i);
        }
        let scan = pg_sys::index_beginscan(rel, index, snapshot, key.len() as i32, 0);
        pg_sys::index_rescan(scan, keys.as_mut_ptr(), key.len() as i32, std::ptr::null_mut(), 0);
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let mut found = None;
        let mut own_write = false;
        while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
            if ((*slot).tts_nvalid as i32) < last_attnum {
                pg_sys::slot_getsomeattrs_int(slot, last_attnum);
            }
            if let Some(value) = read(&Row { slot, attnums }) {
                let tuple = pg_sys::ExecFetchSlotHeapTuple(slot, false, std::ptr::null_mut());
                own_write = pg_sys::TransactionIdIsCurrentTransactionId((*(*tuple).t_data).t_choice.t_heap.t_xmin);
                found = Some(value);
                break;
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        Some(Probe { found, cacheable: !parallel && !own_write })
    }
}

/// Whether reads see the transaction's first snapshot rather than one per statement: then
/// nothing is kept, since that snapshot can predate a change whose invalidation this backend
/// has already processed.
pub fn uses_transaction_snapshot() -> bool {
    // SAFETY: a backend-local global.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// How a cache of probe answers may be used now.
#[derive(Clone, Copy, PartialEq)]
pub enum Caching {
    ReadAndKeep,
    /// Under a transaction snapshot: see `uses_transaction_snapshot`.
    ReadOnly,
    /// In parallel mode: every process answers from the statement's snapshot (`Statement`).
    Off,
}

impl Caching {
    pub fn now() -> Self {
        if in_parallel_mode() {
            Caching::Off
        } else if uses_transaction_snapshot() {
            Caching::ReadOnly
        } else {
            Caching::ReadAndKeep
        }
    }
}

/// The answer for `key` from `cache`, else from `read` (a probe of `table`), and whether it is
/// kept. An invalidation processed during the probe (its locks read the queue) may be the one
/// that ended what was read: then the answer is used once and not kept.
pub fn through_cache<K: Hash + Eq + Copy, V: Clone>(
    cache: &'static LocalKey<RefCell<EpochCache<K, V>>>,
    table: &Table,
    key: K,
    caching: Caching,
    capacity: usize,
    read: impl FnOnce() -> Option<Probe<V>>,
) -> Option<(V, bool)> {
    let epoch = epoch(table);
    if caching != Caching::Off {
        if let Some(hit) = cache.with_borrow_mut(|c| c.get(epoch, &key)) {
            return Some((hit, true));
        }
    }
    let Probe { found, cacheable } = read()?;
    let value = found?;
    let kept = cacheable && caching == Caching::ReadAndKeep && self::epoch(table) == epoch;
    if kept {
        cache.with_borrow_mut(|c| c.insert(epoch, key, value.clone(), capacity));
    }
    Some((value, kept))
}

/// One answer kept for its `Statement` only: computed in parallel mode, or once per statement.
pub struct StatementMemo<K, V>(Option<(Statement, K, V)>);

impl<K, V: Clone> StatementMemo<K, V> {
    pub const fn new() -> Self {
        StatementMemo(None)
    }

    pub fn get<Q: ?Sized + PartialEq>(&self, statement: Statement, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.0.as_ref().filter(|(s, k, _)| *s == statement && k.borrow() == key).map(|m| m.2.clone())
    }

    pub fn set(&mut self, statement: Statement, key: K, value: V) {
        self.0 = Some((statement, key, value));
    }
}

/// Whether this process runs part of a parallel plan (as its leader or a worker), where answers
/// must come from the statement's snapshot (see `identity::verify`).
pub fn in_parallel_mode() -> bool {
    // SAFETY: reads backend-local state.
    unsafe { pg_sys::IsInParallelMode() }
}

/// What an answer computed in parallel mode is kept for: one statement's view of the data in
/// this process. Two statements share it only if their snapshots see exactly the same rows
/// (same bounds, same count of completed transactions, same command) and they started at the
/// same instant, as the statements of one multi-statement query string may.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    transaction: pg_sys::LocalTransactionId,
    started: pg_sys::TimestampTz,
    snapshot: (pg_sys::TransactionId, pg_sys::TransactionId, u64, pg_sys::CommandId),
}

impl Statement {
    pub fn current() -> Self {
        // SAFETY: backend-local state of a running transaction; workers get the leader's
        // statement start and snapshot.
        unsafe {
            let snapshot = if pg_sys::ActiveSnapshotSet() {
                let s = pg_sys::GetActiveSnapshot();
                ((*s).xmin, (*s).xmax, (*s).snapXactCompletionCount, (*s).curcid)
            } else {
                (pg_sys::InvalidTransactionId, pg_sys::InvalidTransactionId, 0, pg_sys::GetCurrentCommandId(false))
            };
            Statement { transaction: (*pg_sys::MyProc).lxid, started: pg_sys::GetCurrentStatementStartTimestamp(), snapshot }
        }
    }
}

/// PostgreSQL's epoch (2000-01-01) in Unix milliseconds.
const POSTGRES_EPOCH_MS: i64 = 946_684_800_000;

/// A timestamptz (microseconds since 2000, as `Row::get::<i64>` reads it) in Unix
/// milliseconds, rounded down.
pub fn unix_ms(microseconds: i64) -> i64 {
    microseconds.div_euclid(1000) + POSTGRES_EPOCH_MS
}
