//! Whether a token verifies now, on the hot path. A token verifies when its signature and claims
//! check out against a signing key that still verifies, its user is live and has not revoked
//! tokens issued before it (password change, reset, deactivation), and its session has not
//! ended. Each part has its own per-backend cache, dropped when its table changes in any backend
//! (`probe::epoch`):
//!
//! | cache      | keeps, by                                | dropped when                    |
//! | ---------- | ---------------------------------------- | ------------------------------- |
//! | `TOKENS`   | signature-checked claims, token SHA-256  | a signing key changes           |
//! | `KEYS`     | verifying keys, kid                      | a signing key changes           |
//! | `USERS`    | a live user's revocation instant, id     | a user is deleted, deactivated or revokes tokens |
//! | `SESSIONS` | a live session's user, id                | a session ends                  |
//!
//! So a token seen before costs one hash lookup (three after users or sessions change: see
//! `Signed`); a new token of a user and session this backend knows (a refresh) costs its
//! signature check; another user's logout costs each user one session probe, not a signature
//! check. Misses read one row by key (`probe`), never SPI.
//! Nothing read through a transaction snapshot (REPEATABLE READ, SERIALIZABLE) is kept: the
//! same rule as memberships (`tenancy::context`).
//!
//! An identity forwarded to a Citus worker (`forwarded`) is checked the same way, with its
//! transaction's key in place of the signing key; only the last one is kept, with its
//! transaction (each transaction has its own).

use super::forwarded::{self, Binding};
use crate::cache::EpochCache;
use crate::probe::{self, Caching, SESSIONS as SESSIONS_TABLE, SIGNING_KEYS, StatementMemo, USERS as USERS_TABLE};
use crate::tokens::{self, LEEWAY_SECONDS, Verified, VerifyingKey};
use pgrx::datum::IntoDatum;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

type Digest = [u8; 32];

thread_local! {
    /// Each bounded by nile_auth.token_cache_size: a client cycling through tokens cannot grow
    /// a backend without limit; when full, the least recently used give way (`cache`).
    static TOKENS: RefCell<EpochCache<Digest, Signed>> = RefCell::new(EpochCache::new());
    static USERS: RefCell<EpochCache<Uuid, i64>> = RefCell::new(EpochCache::new());
    static SESSIONS: RefCell<EpochCache<Uuid, Uuid>> = RefCell::new(EpochCache::new());
    /// A handful of keys, so no eviction: the epoch and the keys.
    static KEYS: RefCell<(u64, Vec<(String, VerifyingKey)>)> = const { RefCell::new((0, Vec::new())) };
    /// The last token verified, with the epochs it was verified at: policies ask once per row,
    /// nearly always about the token asked about last, so it is compared rather than hashed.
    static LAST: RefCell<([u64; 3], String, Option<Verified>)> = const { RefCell::new(([0; 3], String::new(), None)) };
}

fn epochs() -> [u64; 3] {
    [probe::epoch(&SIGNING_KEYS), probe::epoch(&USERS_TABLE), probe::epoch(&SESSIONS_TABLE)]
}

fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn capacity() -> usize {
    usize::try_from(crate::settings::TOKEN_CACHE_SIZE.get()).unwrap_or(0)
}

/// What a token says, if it verifies now.
pub fn verify_token(token: &str) -> Option<Verified> {
    if probe::in_parallel_mode() {
        return verify_in_statement(token);
    }
    let at = epochs();
    let now = now_seconds();
    let usable = |v: &Verified| v.expires_at + LEEWAY_SECONDS >= now;
    let last = LAST.with_borrow(|(seen, text, v)| v.filter(|v| *seen == at && text == token && usable(v)));
    if last.is_some() {
        return last;
    }
    let (verified, kept) = verify_parts(token, now, Caching::now())?;
    // Only what every cache holds at these epochs may be answered from LAST.
    if kept && epochs() == at {
        // Into the same buffer: no allocation per token on a pooled connection.
        LAST.with_borrow_mut(|(seen, text, v)| {
            *seen = at;
            text.clear();
            text.push_str(token);
            *v = Some(verified);
        });
    }
    Some(verified)
}

thread_local! {
    static IN_STATEMENT: RefCell<StatementMemo<String, Option<Verified>>> = const { RefCell::new(StatementMemo::new()) };
}

/// In parallel mode (a leader running a parallel plan, or one of its workers), every process
/// must reach the same answer, or a worker would see a different identity than its leader. So
/// no cache is read there: each process verifies once per statement against what the
/// statement's snapshot shows (`probe`; workers share it with their leader) and keeps the
/// answer for that statement only. Time is the clock's, as everywhere: a process that judges
/// later can only refuse a token that has expired since (an error, or fewer rows).
///
/// Under REPEATABLE READ or SERIALIZABLE that snapshot is the transaction's, which a client
/// can even import from a transaction that began before a logout or revocation (SET
/// TRANSACTION SNAPSHOT); no newer one may be taken in parallel mode. So there nothing is
/// verified: 55000, fail closed.
fn verify_in_statement(token: &str) -> Option<Verified> {
    in_statement(token, |now| verify_parts(token, now, Caching::Off))
}

/// `verify_in_statement` for any credential: `verify` runs once per statement and text (which
/// names the kind of credential where it is not a token).
fn in_statement(text: &str, verify: impl FnOnce(u64) -> Option<(Verified, bool)>) -> Option<Verified> {
    if probe::uses_transaction_snapshot() {
        crate::errors::AuthError::ObjectNotInPrerequisiteState(
            "a parallel plan cannot verify a token under REPEATABLE READ or SERIALIZABLE: use READ COMMITTED, or SET max_parallel_workers_per_gather = 0"
                .into(),
        )
        .raise();
    }
    let statement = probe::Statement::current();
    let now = now_seconds();
    if let Some(answer) = IN_STATEMENT.with_borrow(|m| m.get(statement, text)) {
        return answer.filter(|v| v.expires_at + LEEWAY_SECONDS >= now);
    }
    let answer = verify(now).map(|(v, _)| v);
    IN_STATEMENT.with_borrow_mut(|m| m.set(statement, text.to_owned(), answer));
    answer
}

thread_local! {
    /// The last forwarded identity verified, with its transaction and epochs (as `LAST`).
    static LAST_FORWARDED: RefCell<([u64; 3], Binding, String, Option<Verified>)> =
        const { RefCell::new(([0; 3], [0; 20], String::new(), None)) };
}

/// What a forwarded identity (`forwarded`) says, if it was made for this backend's distributed
/// transaction and its token would verify now: the same checks of claims, key, user and
/// session, with the derived key in place of the signing key.
pub fn verify_forwarded(text: &str) -> Option<Verified> {
    let binding = forwarded::received_binding()?;
    let parts = |now, caching| {
        let verified = tokens::verify(text, &super::audience(), now, |kid| forwarded::key(kid, &binding))?;
        live(verified, caching).map(|kept| (verified, kept))
    };
    if probe::in_parallel_mode() {
        // The binding is the leader's, and fixed for the statement.
        return in_statement(&format!("forwarded {text}"), |now| parts(now, Caching::Off));
    }
    let at = epochs();
    let now = now_seconds();
    let last = LAST_FORWARDED.with_borrow(|(seen, bound, t, v)| {
        v.filter(|v| *seen == at && *bound == binding && t == text && v.expires_at + LEEWAY_SECONDS >= now)
    });
    if last.is_some() {
        return last;
    }
    let (verified, kept) = parts(now, Caching::now())?;
    if kept && epochs() == at {
        LAST_FORWARDED.with_borrow_mut(|(seen, bound, t, v)| {
            *seen = at;
            *bound = binding;
            t.clear();
            t.push_str(text);
            *v = Some(verified);
        });
    }
    Some(verified)
}

/// A token's entry in `TOKENS`: its claims, and the epochs of users and sessions at which its
/// user and session were last found live, so that while neither table has changed since, a
/// token seen before costs one lookup instead of three.
#[derive(Clone, Copy)]
struct Signed {
    verified: Verified,
    confirmed: Option<[u64; 2]>,
}

/// The verification, part by part (see the module docs), and whether every part is cached.
/// Each part reads its table's epoch when it starts: a probe of an earlier part may have
/// processed an invalidation that drops what a later part would find cached.
fn verify_parts(token: &str, now: u64, caching: Caching) -> Option<(Verified, bool)> {
    let digest: Digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().try_into().ok()?;
    let keys_epoch = probe::epoch(&SIGNING_KEYS);
    let (signed, mut kept) = signed_claims(token, &digest, keys_epoch, now, caching)?;
    let verified = signed.verified;
    if verified.expires_at + LEEWAY_SECONDS < now {
        return None;
    }
    let live_at = [probe::epoch(&USERS_TABLE), probe::epoch(&SESSIONS_TABLE)];
    if kept && signed.confirmed == Some(live_at) {
        return Some((verified, true));
    }
    kept &= live(verified, caching)?;
    // Both answers came from caches kept at these epochs (or were just kept there).
    if kept && caching == Caching::ReadAndKeep && [probe::epoch(&USERS_TABLE), probe::epoch(&SESSIONS_TABLE)] == live_at {
        let confirmed = Signed { verified, confirmed: Some(live_at) };
        TOKENS.with_borrow_mut(|c| c.insert(keys_epoch, digest, confirmed, capacity()));
    }
    Some((verified, kept))
}

/// Whether the token's user is live and has not revoked tokens issued before it, and its
/// session has not ended: `Some(kept)` if so, with whether both answers are kept.
fn live(verified: Verified, caching: Caching) -> Option<bool> {
    let (valid_after_ms, mut kept) = valid_after(verified.user_id, caching)?;
    if (verified.issued_at_ms as i64) < valid_after_ms {
        return None;
    }
    if let Some(session) = verified.session {
        let (user, session_kept) = session_user(session, caching)?;
        if user != verified.user_id {
            return None;
        }
        kept &= session_kept;
    }
    Some(kept)
}

/// The claims of a token whose signature and claims check out, from `TOKENS` or checked now;
/// and whether the answer is kept.
fn signed_claims(token: &str, digest: &Digest, epoch: u64, now: u64, caching: Caching) -> Option<(Signed, bool)> {
    if caching != Caching::Off {
        if let Some(hit) = TOKENS.with_borrow_mut(|c| c.get(epoch, digest)) {
            return Some((hit, true));
        }
    }
    let mut key_kept = false;
    let verified = tokens::verify(token, &super::audience(), now, |kid| {
        let (key, kept) = verifying_key(kid, epoch, caching)?;
        key_kept = kept;
        Some(key)
    })?;
    let signed = Signed { verified, confirmed: None };
    let kept = key_kept && probe::epoch(&SIGNING_KEYS) == epoch;
    if kept {
        TOKENS.with_borrow_mut(|c| c.insert(epoch, *digest, signed, capacity()));
    }
    Some((signed, kept))
}

/// The verifying key `kid`, if it may verify tokens (current or retired), and whether it is kept.
fn verifying_key(kid: &str, epoch: u64, caching: Caching) -> Option<(VerifyingKey, bool)> {
    if caching != Caching::Off {
        let hit = KEYS.with_borrow_mut(|(seen, keys)| {
            if *seen != epoch {
                keys.clear();
                *seen = epoch;
            }
            keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key.clone())
        });
        if let Some(key) = hit {
            return Some((key, true));
        }
    }
    let kid_datum = kid.into_datum()?;
    let read = probe::probe(&SIGNING_KEYS, &[kid_datum], |row| {
        let retired_at = crate::keys::verifies(row)?;
        let alg = tokens::Alg::parse(&row.get::<String>(0)?)?;
        let material = row.get::<Vec<u8>>(2).or_else(|| row.get::<Vec<u8>>(3))?;
        Some(VerifyingKey { alg, material, retired_at })
    });
    let (key, cacheable) = match read {
        Some(probe::Probe { found, cacheable }) => (found?, cacheable),
        // 0.1.0's table, before ALTER EXTENSION UPDATE: read the old way, through SPI.
        None => (crate::privilege::as_extension_owner(|| crate::keys::legacy_verifying_key(kid))?, true),
    };
    let kept = cacheable && caching == Caching::ReadAndKeep && probe::epoch(&SIGNING_KEYS) == epoch;
    if kept {
        KEYS.with_borrow_mut(|(seen, keys)| {
            if *seen == epoch {
                keys.push((kid.to_owned(), key.clone()));
            }
        });
    }
    Some((key, kept))
}

/// The instant (Unix ms) before which `user`'s tokens no longer verify, if the user is live;
/// and whether the answer is kept.
fn valid_after(user: Uuid, caching: Caching) -> Option<(i64, bool)> {
    probe::through_cache(&USERS, &USERS_TABLE, user, caching, capacity(), || {
        probe::probe(&USERS_TABLE, &[uuid_datum(user)], |row| {
            // deleted, deactivated: not live. A token's own millisecond is truncated, so the
            // revocation instant is too: a token minted in the same millisecond just after a
            // password change must not look older than the change.
            (row.is_null(0) && row.is_null(1)).then(|| row.get::<i64>(2).map_or(0, probe::unix_ms))
        })
    })
}

/// The user of `session` if it has not ended, and whether the answer is kept. Before ALTER
/// EXTENSION UPDATE there is no sessions table (nothing found), and only 0.1.0's tokens (no
/// session) verify.
fn session_user(session: Uuid, caching: Caching) -> Option<(Uuid, bool)> {
    probe::through_cache(&SESSIONS, &SESSIONS_TABLE, session, caching, capacity(), || {
        probe::probe(&SESSIONS_TABLE, &[uuid_datum(session)], |row| {
            if row.is_null(1) { row.get::<pgrx::Uuid>(0).map(crate::db::from_pg) } else { None }
        })
    })
}

fn uuid_datum(id: Uuid) -> pg_sys::Datum {
    crate::db::to_pg(id).into_datum().unwrap_or(pg_sys::Datum::from(0))
}
