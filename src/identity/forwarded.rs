//! Identity on Citus workers without the token. Citus runs a query's shard tasks on the workers
//! over its own connections and forwards a transaction's SET LOCAL statements there as text,
//! which pg_stat_activity, citus_stat_activity, logs and statement statistics keep. So the token
//! stays on the coordinator, and `authenticate(…, true)` and `set_context` forward, in
//! `nile_auth.forwarded_identity`, a credential made for one distributed transaction: the token's
//! header and payload signed (HS256) with a key derived from its signing key's secret and the
//! transaction's Citus id. A worker derives the same key from its copy of the signing keys and
//! the id Citus gave its connection, then checks claims, user and session as for the token
//! (`verify::verify_forwarded`). In any other transaction it verifies nothing, and a worker
//! masks it in pg_stat_activity as soon as it arrives (`mask_in_activity`).
//!
//! The transaction id is read from Citus's shared memory through the two functions Citus exports
//! for it; a Citus that lacks them gets no forwarded identity (the workers refuse, fail closed).

use crate::probe::{self, SIGNING_KEYS};
use crate::tokens::{self, Alg, VerifyingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pgrx::datum::IntoDatum;
use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_void};

/// The setting Citus forwards to the workers.
pub const FORWARDED_IDENTITY: &CStr = c"nile_auth.forwarded_identity";
/// Domain separation: the derived key signs nothing but forwarded identities.
const LABEL: &[u8] = b"nile_auth forwarded identity v1\0";

/// Citus's DistributedTransactionId (src/include/distributed/transaction_identifier.h).
#[repr(C)]
struct DistributedTransactionId {
    initiator_node_identifier: i32,
    transaction_originator: bool,
    transaction_number: u64,
    timestamp: i64,
}

/// The distributed transaction, as bytes for the key derivation: the node that started it, its
/// number there and its start.
pub type Binding = [u8; 20];

type GetId = unsafe extern "C-unwind" fn() -> *mut DistributedTransactionId;
type EnsureId = unsafe extern "C-unwind" fn();

thread_local! {
    /// Citus's functions, looked up once per backend (Citus is preloaded, so they do not move).
    static CITUS: Cell<Option<Option<(GetId, EnsureId)>>> = const { Cell::new(None) };
}

fn citus_functions() -> Option<(GetId, EnsureId)> {
    if let Some(found) = CITUS.get() {
        return found;
    }
    let lookup = |name: &CStr| {
        // SAFETY: Citus is loaded (its catalog exists, `db::citus_installed`); a missing symbol
        // returns NULL rather than raising.
        let f = unsafe { pg_sys::load_external_function(c"citus".as_ptr(), name.as_ptr(), false, std::ptr::null_mut()) };
        (!f.is_null()).then_some(f as *const c_void)
    };
    let found = match (lookup(c"GetCurrentDistributedTransactionId"), lookup(c"EnsureDistributedTransactionId")) {
        // SAFETY: both are Citus's C functions with these signatures.
        (Some(get), Some(ensure)) => Some(unsafe { (std::mem::transmute::<*const c_void, GetId>(get), std::mem::transmute::<*const c_void, EnsureId>(ensure)) }),
        _ => None,
    };
    CITUS.set(Some(found));
    found
}

/// This backend's distributed transaction, if it has one, and whether this backend started it:
/// on the coordinator once Citus has started it, on a worker once Citus has assigned its
/// connection the coordinator's (after the SET statements it forwards, before the first shard
/// query). Parallel workers read their leader's.
fn transaction() -> Option<(Binding, bool)> {
    if !crate::db::citus_installed() {
        return None;
    }
    let (get, _) = citus_functions()?;
    // SAFETY: Citus's function returns a palloc'd copy read under its lock; an ERROR it raises
    // is caught at the boundary and re-raised as a Rust panic.
    let id = unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| get()) };
    if id.is_null() {
        return None;
    }
    // SAFETY: the layout of Citus 13's DistributedTransactionId, read and freed once.
    let DistributedTransactionId { initiator_node_identifier, transaction_originator, transaction_number, timestamp } =
        unsafe { id.read() };
    unsafe { pg_sys::pfree(id.cast()) };
    if transaction_number == 0 {
        return None;
    }
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&initiator_node_identifier.to_le_bytes());
    bytes[4..12].copy_from_slice(&transaction_number.to_le_bytes());
    bytes[12..].copy_from_slice(&timestamp.to_le_bytes());
    Some((bytes, transaction_originator))
}

thread_local! {
    /// The transaction id found in this local transaction, by its local id: once Citus has
    /// assigned one it stays until the transaction ends, and policies ask for it on every row.
    static RECEIVED: Cell<(pg_sys::LocalTransactionId, Option<(Binding, bool)>)> = const { Cell::new((0, None)) };
}

/// The distributed transaction a forwarded identity received here must have been made for. None
/// where this backend started the transaction: the node that forwards has the token itself, so
/// a RESET of the token there drops the identity as on one node.
pub fn received_binding() -> Option<Binding> {
    // SAFETY: MyProc is this backend's own entry, set for any backend that runs SQL.
    let local = unsafe { (*pg_sys::MyProc).lxid };
    let found = match RECEIVED.get() {
        (seen, Some(found)) if seen == local => Some(found),
        _ => {
            // Not kept while there is none yet: Citus assigns it after the SETs it forwards.
            let found = transaction();
            RECEIVED.set((local, found));
            found
        }
    };
    found.filter(|(_, originator)| !originator).map(|(binding, _)| binding)
}

/// The key that signs forwarded identities of tokens from signing key `kid` in `binding`'s
/// transaction, if `kid` still verifies (current, or retired; its retirement applies as to the
/// token). Read from this node's copy of the keys; the secret never leaves this function.
pub fn key(kid: &str, binding: &Binding) -> Option<VerifyingKey> {
    let kid_datum = kid.into_datum()?;
    let read = probe::probe(&SIGNING_KEYS, &[kid_datum], |row| {
        let retired_at = crate::keys::verifies(row)?;
        let secret = row.get::<Vec<u8>>(3)?;
        let derived = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), &[LABEL, binding].concat());
        Some(VerifyingKey { alg: Alg::Hs256, material: derived.as_ref().to_vec(), retired_at })
    })?;
    read.found
}

/// The forwarded identity of `token` (verified by the caller) for this distributed transaction,
/// which this starts if needed; `None` where Citus cannot give one.
pub fn forward(token: &str) -> Option<String> {
    let (_, ensure) = citus_functions()?;
    // SAFETY: starts Citus's coordinated transaction, as any distributed statement would; an
    // ERROR is caught at the boundary.
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| ensure()) };
    let (binding, _) = transaction()?;
    let (_, kid) = tokens::acceptable_header(token)?;
    let key = key(&kid, &binding)?;
    let header = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string());
    let signed = format!("{header}.{}", token.split('.').nth(1)?);
    let signature = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.material), signed.as_bytes());
    Some(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
}

thread_local! {
    /// Set while nile_auth itself sets the setting (`ours`).
    static OURS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `set`, nile_auth's own SET of the setting, past the check hook `only_ours`.
pub fn ours<R>(set: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            OURS.set(self.0);
        }
    }
    let _restore = Restore(OURS.replace(true));
    set()
}

/// The setting's check hook: a value comes from nile_auth (`forward`, through `ours`), or
/// arrives on a connection Citus opened from another node (start-up name `citus_internal
/// gpid=…`, which SET cannot move; run_command_on_* opens its connections so too), or is
/// restored in a parallel worker from its leader. A client's own is refused (42501): on the
/// coordinator Citus would forward it to the workers as if from us. Where it is taken, it still
/// verifies only in the transaction it was made for.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn only_ours(value: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: the GUC system passes a valid pointer to a NUL-terminated string or NULL;
    // ParallelWorkerNumber is a process-local variable.
    let empty = unsafe { (*value).is_null() || **value == 0 };
    let started_by_citus = || crate::settings::application_name_starts_with(b"citus_internal gpid=", false);
    if empty || OURS.get() || unsafe { pg_sys::ParallelWorkerNumber } >= 0 || started_by_citus() {
        return true;
    }
    // SAFETY: messages copied into the current memory context, as the GUC system expects. Ours
    // replaces PostgreSQL's, which would repeat the value.
    unsafe {
        pg_sys::GUC_check_errcode(crate::errors::AuthError::PermissionDenied(String::new()).sqlstate() as i32);
        pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(c"only nile_auth sets nile_auth.forwarded_identity".as_ptr());
        pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(c"It carries the caller's identity to the Citus workers.".as_ptr());
    }
    false
}

/// The setting's assign hook. A worker receives the credential inside the text of a statement
/// (Citus's BEGIN, or a SET it sends alone), which pg_stat_activity shows to every session of
/// the role until the connection's next statement; from here on it shows that text masked. Only
/// a statement that contains the value is touched: on the coordinator the value comes from our
/// own SET, not from the client's statement.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn mask_in_activity(value: *const c_char, _extra: *mut c_void) {
    // SAFETY: NUL-terminated strings owned by the GUC system and the backend.
    let (value, statement) = unsafe {
        if value.is_null() || pg_sys::debug_query_string.is_null() {
            return;
        }
        (CStr::from_ptr(value).to_bytes(), CStr::from_ptr(pg_sys::debug_query_string).to_bytes())
    };
    if let Some(masked) = mask(statement, value) {
        // SAFETY: the text is copied into this backend's activity entry.
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, masked.as_ptr()) };
    }
}

/// `statement` with every occurrence of `value` replaced, or `None` when there is none.
fn mask(statement: &[u8], value: &[u8]) -> Option<CString> {
    let (statement, value) = (String::from_utf8_lossy(statement), String::from_utf8_lossy(value));
    // str's search is linear: a long statement cannot stall the backend here.
    if value.is_empty() || !statement.contains(value.as_ref()) {
        return None;
    }
    CString::new(statement.replace(value.as_ref(), "(masked)")).ok()
}

#[cfg(test)]
mod unit {
    use super::mask;

    #[test]
    fn masks_every_occurrence_and_only_when_present() {
        let masked = mask(b"BEGIN;SET LOCAL nile_auth.forwarded_identity = E'a.b.c';SELECT 'a.b.c'", b"a.b.c").unwrap();
        assert_eq!(masked.to_str().unwrap(), "BEGIN;SET LOCAL nile_auth.forwarded_identity = E'(masked)';SELECT '(masked)'");
        assert!(mask(b"SELECT nile_auth.set_context($1, $2)", b"a.b.c").is_none());
        assert!(mask(b"SELECT 1", b"").is_none());
    }
}
