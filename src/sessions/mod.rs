//! Sessions: what login, signup and login_with_api_key open, what a refresh token renews and
//! logout ends. An access token carries its session's id (`sid`) and stops verifying in every
//! backend once the session ends (the `sessions` trigger drops cached verifications).
//!
//! Refresh tokens rotate: each is spent by one refresh, which hands out its successor. Only
//! hashes are stored. A successor is the HMAC of its predecessor under the session's private
//! key, so a spent token presented again within nile_auth.refresh_reuse_interval yields the same
//! successor (two tabs, a server-side render) without the successor being stored anywhere; later,
//! the presentation is taken as theft and the session ends (`reuse`).

mod reuse;

use crate::audit::record;
use crate::caller::{Caller, caller_and_scope};
use crate::db::{clock_now, from_pg, read_all, read_row, to_pg, write, write_returning};
use crate::errors::{AuthError, OrRaise, required};
use crate::identity::{require_account_user, require_verified};
use crate::settings::{REFRESH_REUSE_INTERVAL, SESSION_IDLE_TIMEOUT, SESSION_MAX_AGE, TOKEN_MAX_AGE, TOKEN_ROLE_CLAIM};
use crate::tokens::Subject;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Recognisable in logs and secret scanners, like API keys' `nak_`.
const REFRESH_PREFIX: &str = "nrt_";
/// How far a reused token's chain of successors is followed to the live one.
const MAX_CHAIN: usize = 16;

/// Why a session ended (the CHECK on nile_auth.sessions.end_reason lists the same).
#[derive(Clone, Copy)]
pub enum EndReason {
    Logout,
    Revoked,
    RefreshTokenReused,
    PasswordChanged,
    Deactivated,
    ApiKeyRevoked,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Revoked => "revoked",
            EndReason::RefreshTokenReused => "refresh_token_reused",
            EndReason::PasswordChanged => "password_changed",
            EndReason::Deactivated => "deactivated",
            EndReason::ApiKeyRevoked => "api_key_revoked",
        }
    }
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn seconds(setting: &pgrx::guc::GucSetting<i32>) -> u64 {
    setting.get().max(1) as u64
}

/// `{"jwt", "maxAge", "type"}` for `subject`, signed with the current key. It expires with the
/// session: at `session_end` (Unix seconds) or after the idle timeout, whichever is first.
fn access_token(subject: &Subject, session_end: u64) -> Value {
    let now = now_seconds();
    let expires = (now + seconds(&TOKEN_MAX_AGE)).min(session_end).min(now + seconds(&SESSION_IDLE_TIMEOUT)).max(now + 1);
    let role = TOKEN_ROLE_CLAIM.get().and_then(|r| r.into_string().ok()).filter(|r| !r.is_empty());
    let key = crate::keys::current_signing_key();
    let jwt = crate::tokens::issue(&key, subject, &crate::identity::audience(), now, expires, role.as_deref()).or_raise();
    json!({"jwt": jwt, "maxAge": expires - now, "type": "ACCESS_TOKEN"})
}

fn new_refresh_token() -> String {
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>().or_raise()))
}

/// The token that succeeds `token` in its session: 256 bits no one can compute without the
/// session's key.
fn successor(key: &[u8], token: &str) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), token.as_bytes());
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn store_refresh_token(token: &str, session: Uuid) {
    write(
        "INSERT INTO nile_auth.refresh_tokens (token_hash, session_id, created)
         VALUES (sha256(convert_to($1, 'UTF8')), $2, clock_timestamp())",
        &[token.into(), to_pg(session).into()],
    );
}

/// Opens a session for `user` (limited to `tenant` when given, opened with `api_key` when given)
/// and returns the sign-in fields: `{"token", "refreshToken", "sessionId"}`.
pub fn open(user: Uuid, email: &str, tenant: Option<Uuid>, api_key: Option<Uuid>) -> Map<String, Value> {
    let key = crate::random::bytes::<32>().or_raise();
    let (session, end) = write_returning(
        "INSERT INTO nile_auth.sessions (user_id, tenant_id, api_key_id, refresh_key, created, not_after)
         VALUES ($1, $2, $3, $4, statement_timestamp(), statement_timestamp() + make_interval(secs => $5))
         RETURNING id, not_after",
        &[
            to_pg(user).into(),
            tenant.map(to_pg).into(),
            api_key.map(to_pg).into(),
            key.to_vec().into(),
            (seconds(&SESSION_MAX_AGE) as f64).into(),
        ],
        |row| Ok((row.get::<pgrx::Uuid>(1)?, row.get::<pgrx::datum::TimestampWithTimeZone>(2)?)),
    )
    .and_then(|(id, end)| Some((from_pg(id?), unix_seconds(end?))))
    .unwrap_or_else(|| AuthError::Internal("session not stored".into()).raise());
    let refresh_token = new_refresh_token();
    store_refresh_token(&refresh_token, session);
    let token = access_token(&Subject { user_id: user, email, tenant, session: Some(session) }, end);
    let mut fields = Map::new();
    fields.insert("token".into(), token);
    fields.insert("refreshToken".into(), refresh_token.into());
    fields.insert("sessionId".into(), session.to_string().into());
    fields
}

/// Whether `user` may still be given a session by a login that began at this statement: live,
/// and no revocation (password change or reset, deactivation, logout('global')) since. The row
/// is locked, so a revocation that commits meanwhile waits, and a login reading through an older
/// snapshot (REPEATABLE READ) fails with 40001 instead of using a password that changed since.
pub fn still_valid(user: Uuid) -> bool {
    write_returning(
        "SELECT true FROM nile_auth.users
          WHERE id = $1 AND deleted IS NULL AND deactivated IS NULL
            AND (tokens_valid_after IS NULL OR tokens_valid_after < statement_timestamp())
            FOR SHARE",
        &[to_pg(user).into()],
        |row| row.get::<bool>(1),
    )
    .flatten()
    .unwrap_or(false)
}

/// A live session that may be renewed: not ended or expired, its user live and not locked by
/// an administrator, its API key (if any) valid, its tenant (if any) still the user's.
struct Renewable {
    user: Uuid,
    email: String,
    tenant: Option<Uuid>,
    key: Vec<u8>,
    end: u64,
}

fn renewable(session: Uuid) -> Option<Renewable> {
    read_row(
        "SELECT s.user_id, u.email, s.tenant_id, s.refresh_key, floor(extract(epoch FROM s.not_after))::bigint
           FROM nile_auth.sessions s JOIN nile_auth.users u ON u.id = s.user_id
          WHERE s.id = $1 AND s.ended IS NULL AND s.not_after > statement_timestamp()
            AND (SELECT max(rt.created) FROM nile_auth.refresh_tokens rt WHERE rt.session_id = s.id)
                > statement_timestamp() - make_interval(secs => $2)
            AND u.deleted IS NULL AND u.deactivated IS NULL
            AND NOT EXISTS (SELECT FROM nile_auth.credentials c
                             WHERE c.user_id = s.user_id AND c.locked_until > statement_timestamp())
            AND (s.api_key_id IS NULL OR EXISTS (
                  SELECT FROM nile_auth.api_keys k
                   WHERE k.id = s.api_key_id AND k.revoked IS NULL
                     AND (k.expires IS NULL OR k.expires > statement_timestamp())))
            AND (s.tenant_id IS NULL OR EXISTS (
                  SELECT FROM nile_auth.tenant_users tu
                   WHERE tu.tenant_id = s.tenant_id AND tu.user_id = s.user_id AND tu.deleted IS NULL))",
        &[to_pg(session).into(), (seconds(&SESSION_IDLE_TIMEOUT) as f64).into()],
        |row| {
            Ok((
                row.get::<pgrx::Uuid>(1)?,
                row.get::<String>(2)?,
                row.get::<pgrx::Uuid>(3)?,
                row.get::<Vec<u8>>(4)?,
                row.get::<i64>(5)?,
            ))
        },
    )
    .and_then(|(user, email, tenant, key, end)| {
        Some(Renewable { user: from_pg(user?), email: email?, tenant: tenant.map(from_pg), key: key?, end: end?.max(0) as u64 })
    })
}

fn signed_in(session: Uuid, live: &Renewable, refresh_token: String) -> JsonB {
    let subject = Subject { user_id: live.user, email: &live.email, tenant: live.tenant, session: Some(session) };
    JsonB(json!({
        "id": live.user,
        "token": access_token(&subject, live.end),
        "refreshToken": refresh_token,
        "sessionId": session,
    }))
}

/// Renews a session: a new access token and the refresh token that succeeds `refresh_token`,
/// which is spent. See the module comment for a spent token presented again. 28000 for a token
/// that is unknown, reused too late, or whose session has ended or expired.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn refresh(refresh_token: Option<&str>) -> JsonB {
    let token = required(refresh_token, "refresh_token").or_raise();
    // Concurrent presentations queue on the row: the first spends it, the others see it spent.
    let spent_now = write_returning(
        "UPDATE nile_auth.refresh_tokens SET spent = $2
          WHERE token_hash = sha256(convert_to($1, 'UTF8')) AND spent IS NULL RETURNING session_id",
        &[token.into(), clock_now().into()],
        |row| row.get::<pgrx::Uuid>(1),
    )
    .flatten()
    .map(from_pg);
    if let Some(session) = spent_now {
        let live = renewable(session).unwrap_or_else(invalid);
        let next = successor(&live.key, token);
        // The successor's row is the refresh's only trace: the session row is never written
        // by a refresh, so no refresh holds a lock that ending the session would wait for.
        store_refresh_token(&next, session);
        return signed_in(session, &live, next);
    }
    let (session, within_interval, session_live) = read_row(
        "SELECT rt.session_id, rt.spent >= statement_timestamp() - make_interval(secs => $2), s.ended IS NULL
           FROM nile_auth.refresh_tokens rt JOIN nile_auth.sessions s ON s.id = rt.session_id
          WHERE rt.token_hash = sha256(convert_to($1, 'UTF8'))",
        &[token.into(), f64::from(REFRESH_REUSE_INTERVAL.get()).into()],
        |row| Ok((row.get::<pgrx::Uuid>(1)?, row.get::<bool>(2)?, row.get::<bool>(3)?)),
    )
    .and_then(|(s, w, l)| Some((from_pg(s?), w?, l?)))
    .unwrap_or_else(invalid);
    if !within_interval {
        if session_live {
            reuse::end_session(session);
        }
        invalid::<()>();
    }
    // Within the interval: the same successor, or, if that was refreshed in turn, the live
    // token at the end of the chain.
    let live = renewable(session).unwrap_or_else(invalid);
    let mut next = successor(&live.key, token);
    for _ in 0..MAX_CHAIN {
        let unspent = read_row(
            "SELECT spent IS NULL FROM nile_auth.refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8')) AND session_id = $2",
            &[next.as_str().into(), to_pg(session).into()],
            |row| row.get::<bool>(1),
        )
        .flatten()
        .unwrap_or_else(invalid);
        if unspent {
            return signed_in(session, &live, next);
        }
        next = successor(&live.key, &next);
    }
    invalid()
}

fn invalid<T>() -> T {
    AuthError::InvalidRefreshToken.raise()
}

/// Ends sessions matching `filter` (SQL over `s`, with `$1` the user) and drops their refresh
/// tokens; returns how many ended. Never waits for a refresh in progress: a refresh locks only
/// refresh_tokens rows, which are skipped (what it writes belongs to an ended session).
fn end_where(filter: &str, mut args: Vec<pgrx::datum::DatumWithOid>, reason: EndReason) -> i64 {
    // Before ALTER EXTENSION UPDATE there are no sessions to end (deactivation, a password
    // reset or revoking an API key must still work then).
    if !crate::db::schema_updated() {
        return 0;
    }
    let (reason_arg, at_arg) = (args.len() + 1, args.len() + 2);
    args.push(reason.as_str().into());
    args.push(clock_now().into());
    write_returning(
        &format!(
            "WITH ended AS (
                 UPDATE nile_auth.sessions s SET ended = ${at_arg}, end_reason = ${reason_arg}
                  WHERE s.ended IS NULL AND {filter} RETURNING s.id),
             dropped AS (DELETE FROM nile_auth.refresh_tokens WHERE token_hash IN (
                             SELECT token_hash FROM nile_auth.refresh_tokens
                              WHERE session_id IN (SELECT id FROM ended) FOR UPDATE SKIP LOCKED))
             SELECT count(*) FROM ended"
        ),
        &args,
        |row| row.get::<i64>(1),
    )
    .flatten()
    .unwrap_or(0)
}

/// Ends every session of `user` and every token issued before now, including tokens minted
/// before sessions existed (no sid), which only time ends: password change or reset,
/// deactivation, logout('global'). Returns how many sessions ended.
pub fn revoke_all(user: Uuid, reason: EndReason) -> i64 {
    write("UPDATE nile_auth.users SET tokens_valid_after = $2 WHERE id = $1", &[to_pg(user).into(), clock_now().into()]);
    end_where("s.user_id = $1", vec![to_pg(user).into()], reason)
}

/// Deletes every session of `user` and its refresh tokens (account deletion).
pub fn delete_all(user: Uuid) {
    if crate::db::schema_updated() {
        write("DELETE FROM nile_auth.sessions WHERE user_id = $1", &[to_pg(user).into()]);
    }
}

/// Ends the sessions an API key opened (it was revoked).
pub fn end_for_api_key(key: Uuid) {
    end_where("s.api_key_id = $1", vec![to_pg(key).into()], EndReason::ApiKeyRevoked);
}

/// Signs out: 'local' ends the session of the token in use, 'others' every other session of the
/// user, 'global' all of them (and tokens without a session, from 0.1.0). Tokens of an ended
/// session stop verifying in every backend at its next transaction. Returns how many sessions
/// ended. 'others' and 'global' act on the whole account: 42501 for a token limited to a tenant.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn logout(scope: default!(Option<&str>, "'local'")) -> i64 {
    let scope = required(scope, "scope").or_raise();
    let verified = require_verified().or_raise();
    let user = verified.user_id;
    let sid = verified.session.map(to_pg);
    let ended = match scope {
        "local" => match sid {
            Some(sid) => end_where("s.user_id = $1 AND s.id = $2", vec![to_pg(user).into(), sid.into()], EndReason::Logout),
            None => 0,
        },
        "others" => {
            require_account_user().or_raise();
            end_where("s.user_id = $1 AND s.id IS DISTINCT FROM $2", vec![to_pg(user).into(), sid.into()], EndReason::Logout)
        }
        "global" => {
            require_account_user().or_raise();
            revoke_all(user, EndReason::Logout)
        }
        _ => AuthError::InvalidParameter("scope must be 'local', 'others' or 'global'".into()).raise(),
    };
    record("session.logout", Some(user), verified.tenant, Some(&user.to_string()), json!({"scope": scope, "ended": ended}));
    ended
}

const SESSION_JSON: &str = "jsonb_build_object('id', s.id, 'created', s.created, 'lastRefreshed', r.last,
        'expires', least(s.not_after, r.last + make_interval(secs => $3)), 'tenantId', s.tenant_id,
        'apiKeyId', s.api_key_id, 'current', s.id IS NOT DISTINCT FROM $2)";

/// The current user's live sessions, oldest first (with a token limited to one tenant: that
/// tenant's). `current` marks the one the token in use belongs to.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_sessions() -> SetOfIterator<'static, JsonB> {
    let verified = require_verified().or_raise();
    SetOfIterator::new(read_all::<JsonB>(
        &format!(
            "SELECT {SESSION_JSON} FROM nile_auth.sessions s
               CROSS JOIN LATERAL (SELECT max(rt.created) AS last FROM nile_auth.refresh_tokens rt
                                    WHERE rt.session_id = s.id) r
              WHERE s.user_id = $1 AND s.ended IS NULL AND s.not_after > statement_timestamp()
                AND r.last > statement_timestamp() - make_interval(secs => $3)
                AND ($4::uuid IS NULL OR s.tenant_id = $4)
              ORDER BY s.created, s.id"
        ),
        &[
            to_pg(verified.user_id).into(),
            verified.session.map(to_pg).into(),
            (seconds(&SESSION_IDLE_TIMEOUT) as f64).into(),
            verified.tenant.map(to_pg).into(),
        ],
    ))
}

/// Ends one session: users their own, the trusted backend anyone's. P0002 for a session the
/// caller cannot see; false when it had already ended.
#[pg_extern(security_definer, volatile)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_session(id: Option<pgrx::Uuid>) -> bool {
    let id = from_pg(required(id, "id").or_raise());
    let (actor, scope) = caller_and_scope().or_raise();
    let owner = read_row(
        "SELECT user_id, tenant_id FROM nile_auth.sessions WHERE id = $1",
        &[to_pg(id).into()],
        |row| Ok((row.get::<pgrx::Uuid>(1)?.map(from_pg), row.get::<pgrx::Uuid>(2)?.map(from_pg))),
    );
    let owner = match (owner, actor) {
        (Some((Some(owner), _)), Caller::TrustedBackend) => owner,
        (Some((Some(owner), tenant)), Caller::User(me)) if me == owner && (scope.is_none() || tenant == scope) => owner,
        _ => AuthError::NotFound(format!("session {id} not found")).raise(),
    };
    let ended = end_where("s.id = $1", vec![to_pg(id).into()], EndReason::Revoked) > 0;
    if ended {
        record("session.revoked", actor.user(), None, Some(&owner.to_string()), json!({"sessionId": id}));
    }
    ended
}

/// A timestamptz in Unix seconds, rounded down (0 before 1970).
fn unix_seconds(at: pgrx::datum::TimestampWithTimeZone) -> u64 {
    crate::probe::unix_ms(i64::from(at)).div_euclid(1000).max(0) as u64
}
