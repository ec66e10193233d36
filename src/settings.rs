//! Settings (GUCs) under `nile_auth.*`, registered when the library loads, and readers for the
//! session settings `nile.*` that clients set themselves.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;

pub static TOKEN_MAX_AGE: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static MIN_PASSWORD_LENGTH: GucSetting<i32> = GucSetting::<i32>::new(8);
pub static MAX_FAILED_LOGINS: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static LOCKOUT_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(15 * 60);
pub static LOCKOUT_DURATION: GucSetting<i32> = GucSetting::<i32>::new(15 * 60);
pub static RESET_TOKEN_MAX_AGE: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static REFRESH_REUSE_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static SESSION_MAX_AGE: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 3600);
pub static SESSION_IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);
/// Entries in each backend's caches (see `cache`): token_cache_size bounds each of the token,
/// user and session caches (`identity::verify`), about 0.17 kB per token plus 0.06 kB each for
/// its user and session; membership_cache_size the memberships (`tenancy::context`), about
/// 0.2 kB each. The defaults hold about 3.6 MB and 3.3 MB.
pub static TOKEN_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(12_288);
pub static MEMBERSHIP_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(16_384);
static FORWARDED_IDENTITY_VALUE: GucSetting<Option<std::ffi::CString>> = GucSetting::<Option<std::ffi::CString>>::new(None);
pub static TOKEN_ROLE_CLAIM: GucSetting<Option<std::ffi::CString>> = GucSetting::<Option<std::ffi::CString>>::new(None);

/// Where a verified token is kept for the session or transaction (Nile's name).
pub const AUTH_TOKEN: &CStr = c"nile.auth_token";
/// The current tenant (Nile's name).
pub const TENANT_ID: &CStr = c"nile.tenant_id";

pub fn register() {
    GucRegistry::define_int_guc(
        c"nile_auth.token_max_age",
        c"Lifetime of access tokens issued by signup and login, in seconds.",
        c"A token also ends with its session (nile_auth.session_max_age, nile_auth.session_idle_timeout).",
        &TOKEN_MAX_AGE,
        60,
        31 * 24 * 3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"nile_auth.min_password_length",
        c"Shortest password, in characters, that signup accepts.",
        c"",
        &MIN_PASSWORD_LENGTH,
        1,
        1024,
        GucContext::Suset,
        GucFlags::default(),
    );
    let seconds = |name, short, setting, max| {
        GucRegistry::define_int_guc(name, short, c"", setting, 1, max, GucContext::Suset, GucFlags::UNIT_S);
    };
    GucRegistry::define_int_guc(
        c"nile_auth.max_failed_logins",
        c"Failed logins within nile_auth.lockout_window that lock an account.",
        c"",
        &MAX_FAILED_LOGINS,
        1,
        1000,
        GucContext::Suset,
        GucFlags::default(),
    );
    seconds(c"nile_auth.lockout_window", c"Window in which failed logins are counted.", &LOCKOUT_WINDOW, 7 * 24 * 3600);
    seconds(c"nile_auth.lockout_duration", c"How long a locked account stays locked.", &LOCKOUT_DURATION, 365 * 24 * 3600);
    seconds(
        c"nile_auth.reset_token_max_age",
        c"Lifetime of password reset and email verification tokens.",
        &RESET_TOKEN_MAX_AGE,
        30 * 24 * 3600,
    );
    seconds(
        c"nile_auth.refresh_reuse_interval",
        c"How long a spent refresh token still returns its successor (concurrent refreshes) before reuse ends the session.",
        &REFRESH_REUSE_INTERVAL,
        3600,
    );
    seconds(c"nile_auth.session_max_age", c"Lifetime of a session, from login.", &SESSION_MAX_AGE, i32::MAX);
    seconds(c"nile_auth.session_idle_timeout", c"A session ends after this long without a refresh.", &SESSION_IDLE_TIMEOUT, i32::MAX);
    GucRegistry::define_int_guc(
        c"nile_auth.token_cache_size",
        c"Verified tokens each backend keeps, and as many users and sessions (about 0.3 kB per token with its user and session); the least recently used go first when full.",
        c"",
        &TOKEN_CACHE_SIZE,
        0,
        10_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"nile_auth.membership_cache_size",
        c"Live memberships each backend keeps (about 0.2 kB each); the least recently used go first when full.",
        c"",
        &MEMBERSHIP_CACHE_SIZE,
        0,
        10_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"nile_auth.token_role_claim",
        c"A database role name put in the role claim of access tokens (PostgREST); empty for none.",
        c"",
        &TOKEN_ROLE_CLAIM,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SAFETY: the hooks guard themselves against panics (pg_guard).
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            crate::identity::forwarded::FORWARDED_IDENTITY,
            c"Set by nile_auth on Citus: the caller's identity for one distributed transaction, forwarded to the workers in place of the token.",
            c"Verifies only inside the distributed transaction it was made for; not a token.",
            &FORWARDED_IDENTITY_VALUE,
            GucContext::Userset,
            GucFlags::NO_SHOW_ALL | GucFlags::DISALLOW_IN_FILE,
            Some(crate::identity::forwarded::only_ours),
            Some(crate::identity::forwarded::mask_in_activity),
            None,
        );
    }
    // Unknown nile_auth.* names are typos; reject them instead of keeping silent placeholders.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"nile_auth".as_ptr()) };
}

/// Sets a `nile.*` setting for the session, or with `is_local` for the current transaction:
/// what `set_config(name, value, is_local)` does. On Citus with `citus.propagate_set_commands =
/// 'local'`, a transaction's setting is a SET LOCAL statement instead: Citus forwards those, and
/// only those, to the workers the transaction uses, where the policies run. Without it, workers
/// see no token and no tenant: end users are refused there (fail closed).
pub fn set_session_setting(name: &CStr, value: &str, is_local: bool) {
    if is_local && citus_forwards_set_local() {
        // E'' reads backslashes the same whatever standard_conforming_strings says.
        let literal = value.replace('\\', "\\\\").replace('\'', "\\'");
        crate::errors::OrRaise::or_raise(pgrx::Spi::run(&format!("SET LOCAL {} = E'{literal}'", name.to_string_lossy())));
        return;
    }
    set_here(name, value, is_local);
}

/// `set_session_setting` on this node only, never forwarded.
pub fn set_here(name: &CStr, value: &str, is_local: bool) {
    let Ok(value) = std::ffi::CString::new(value) else { return };
    let action = if is_local { pg_sys::GucAction::GUC_ACTION_LOCAL } else { pg_sys::GucAction::GUC_ACTION_SET };
    // SAFETY: both strings outlive the call, which copies them.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            0,
            false,
        );
    }
}

pub fn citus_forwards_set_local() -> bool {
    // Without Citus in this database the setting is only a placeholder a client made.
    if !crate::db::citus_installed() {
        return false;
    }
    // SAFETY: reads a setting by name; NULL when Citus is not loaded.
    let value = unsafe { pg_sys::GetConfigOption(c"citus.propagate_set_commands".as_ptr(), true, false) };
    !value.is_null() && unsafe { CStr::from_ptr(value) }.to_bytes().eq_ignore_ascii_case(b"local")
}

/// Whether this connection's application_name starts with `prefix`: the name it started with
/// (its reset value, which SET cannot move), or with `or_now`, the current one too. Citus names
/// the connections it opens from another node so (`caller`, `identity::forwarded`).
pub fn application_name_starts_with(prefix: &[u8], or_now: bool) -> bool {
    let name = c"application_name".as_ptr();
    // SAFETY: reads settings by name; application_name always exists, and its values are
    // NUL-terminated strings owned by the GUC system.
    unsafe {
        let starts = |value: *const std::ffi::c_char| !value.is_null() && CStr::from_ptr(value).to_bytes().starts_with(prefix);
        starts(pg_sys::GetConfigOptionResetString(name)) || (or_now && starts(pg_sys::GetConfigOption(name, false, false)))
    }
}

/// Like `with_session_setting`, but '' reads as `Some("")` when someone set it on purpose (SET,
/// set_config, a startup option, a role or database default): only a setting that is unset, or
/// back at its default after RESET or the end of a SET LOCAL, is absent. For the token, where
/// an empty value a client sent must be a token that does not verify, never "no token".
pub fn with_session_setting_strict<R>(name: &CStr, f: impl FnOnce(Option<&str>) -> R) -> R {
    match setting_text(name) {
        // A setting nobody ever set does not exist at all (no placeholder): unset, without the scan.
        None => f(None),
        Some("") if set_explicitly(name) => f(Some("")),
        Some(value) => f(Some(value).filter(|v| !v.is_empty())),
    }
}

/// Whether a setting's current value came from anywhere but its default. PG15 exports no
/// lookup by name that returns the source, so the settings array is scanned; where the setting
/// was found last is remembered and checked by name before use (the array is re-sorted when
/// settings are added), so a pooled connection whose token went back to '' pays one comparison
/// per call, not a scan: this runs inside tenant_id() and user_id().
fn set_explicitly(name: &CStr) -> bool {
    thread_local! {
        static LAST_FOUND: Cell<usize> = const { Cell::new(0) };
    }
    // SAFETY: the array and its entries belong to the GUC system and outlive this call; names
    // are NUL-terminated.
    unsafe {
        let vars = pg_sys::get_guc_variables();
        let count = usize::try_from(pg_sys::GetNumConfigOptions()).unwrap_or(0);
        let named = |i: usize| {
            let var = *vars.add(i);
            (!var.is_null() && CStr::from_ptr((*var).name).to_bytes().eq_ignore_ascii_case(name.to_bytes())).then_some(var)
        };
        let last = LAST_FOUND.get();
        let found = if last < count { named(last).map(|v| (last, v)) } else { None }
            .or_else(|| (0..count).find_map(|i| named(i).map(|v| (i, v))));
        found.is_some_and(|(i, var)| {
            LAST_FOUND.set(i);
            (*var).source != pg_sys::GucSource::PGC_S_DEFAULT
        })
    }
}

/// Reads a session setting as text and hands it to `f`; `None` when it was never set or is ''
/// (after a `SET LOCAL` ends, Postgres leaves the placeholder at '' rather than removing it).
/// Nothing else counts as unset: a value of spaces is a value, so a token of spaces is a token
/// that does not verify, never "no token".
/// A closure rather than a return value because the text lives in GUC storage, valid only until
/// the setting next changes.
pub fn with_session_setting<R>(name: &CStr, f: impl FnOnce(Option<&str>) -> R) -> R {
    f(setting_text(name).filter(|v| !v.is_empty()))
}

/// The setting's text, or `None` when the setting does not exist (never set in this session).
/// Borrowed from GUC storage: callers use it before the setting can change.
fn setting_text<'a>(name: &CStr) -> Option<&'a str> {
    // SAFETY: GetConfigOption returns NULL or a NUL-terminated string owned by the GUC system.
    let raw = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    // Not UTF-8 cannot happen for a server in UTF-8; read it as a value that matches nothing.
    (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_str().unwrap_or("\u{FFFD}"))
}
