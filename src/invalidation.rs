//! The broadcast behind the per-backend caches (`identity::verify`, `tenancy::context`): a
//! trigger on a table those caches depend on sends a relcache invalidation for the table when
//! the change commits. Every backend receives it before its next transaction (or at its next
//! lock), and the relcache callback in `probe` moves that table's epoch, which drops what was
//! cached from it.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Trigger: tells every backend that this table changed, once the transaction commits (and this
/// backend at its next command).
#[pg_trigger]
fn invalidate_backend_caches<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, PgTriggerError> {
    let relid = trigger.relid()?;
    // SAFETY: a trigger runs inside a transaction; the message is queued for commit.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    Ok(None)
}
