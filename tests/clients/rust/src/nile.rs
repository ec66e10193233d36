//! The per-request recipe for sqlx (docs/apps.md, "Rust: sqlx"): one transaction per request
//! that carries the user's token and tenant, queries that work through pgbouncer in transaction
//! mode, and the SQLSTATE → HTTP mapping. Small enough to copy into an app.

use sqlx::postgres::{PgArguments, PgConnection, PgDatabaseError, PgPool};
use sqlx::{Postgres, query::Query};
use uuid::Uuid;

/// A statement sent as the unnamed prepared statement. sqlx names and caches statements by
/// default, and `statement_cache_capacity(0)` only stops the caching: each statement still gets
/// a name (`sqlx_s_N`, counted per client connection) that is never closed, so behind pgbouncer
/// 1.18 in transaction mode the next client on that server connection fails with 42P05
/// ("prepared statement … already exists"). The unnamed statement is replaced by the next one.
pub fn query(sql: &str) -> Query<'_, Postgres, PgArguments> {
    sqlx::query(sql).persistent(false)
}

/// Runs `f` in one transaction as the token's user in `tenant` (None: no tenant), and commits.
/// The token and tenant are bind parameters (never in statement text, pg_stat_activity or
/// logs), and `set_context` scopes both to this transaction, so the pooled connection (or the
/// pgbouncer server connection) carries nothing to the next request. On any error the
/// transaction is dropped, which rolls it back. Every statement, `set_context` included, runs
/// inside the transaction: through pgbouncer in transaction mode an unnamed statement prepared
/// outside one may be gone when sqlx binds it.
pub async fn with_context<T>(
    pool: &PgPool,
    token: Option<&str>,
    tenant: Option<Uuid>,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<T, NileAuthError> {
    let mut tx = pool.begin().await?;
    // A missing token is sent as '', refused like a bad one (28000: 401). The tenant is bound as
    // a uuid; a &str would be bound as text and match no signature (42883).
    query("SELECT nile_auth.set_context($1, $2)")
        .bind(token.unwrap_or(""))
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    let value = f(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}

/// HTTP status for each SQLSTATE nile_auth raises (docs/api.md, "SQLSTATEs"); anything else is
/// 500.
pub fn http_status(sqlstate: &str) -> u16 {
    match sqlstate {
        "28000" | "28P01" => 401, // no or bad token; wrong email or password
        "42501" => 403,           // not a member of the tenant; not allowed; another tenant's row
        "P0002" => 404,           // unknown tenant, user, session (or one the caller may not see)
        "23505" | "55000" => 409, // email taken; no tenant set, last owner leaving
        "22023" | "22P02" => 400, // malformed input, a tenant id that is not a uuid
        "40001" => 503,           // serialization failure: retry
        _ => 500,
    }
}

/// A failed request as the HTTP layer sees it: the server's message and hint (the two 42501s,
/// "not a member" and a row of another tenant, differ in both). sqlx's messages never include
/// bind parameters, so tokens and passwords stay out of it.
#[derive(Debug)]
pub struct NileAuthError {
    pub status: u16,
    pub sqlstate: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl From<sqlx::Error> for NileAuthError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let sqlstate = db.code().map(|c| c.into_owned());
                NileAuthError {
                    status: sqlstate.as_deref().map_or(500, http_status),
                    sqlstate,
                    message: db.message().to_owned(),
                    hint: db.try_downcast_ref::<PgDatabaseError>().and_then(|pg| pg.hint()).map(str::to_owned),
                }
            }
            other => NileAuthError { status: 500, sqlstate: None, message: other.to_string(), hint: None },
        }
    }
}
