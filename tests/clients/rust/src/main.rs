//! The Clustify story over sqlx (issue 14), as tests/clients/python and tests/clients/node tell
//! it: each request is one `with_context` transaction on a PgPool. Prints `ok:` per check; the
//! first failed check prints `FAIL:` and exits 1. Reads NILE_DB_HOST, NILE_DB_PORT, NILE_DB_NAME,
//! NILE_DB_USER, NILE_VIA and NILE_RUN (tests/clients/run.sh).

mod nile;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use futures_util::future::join_all;
use nile::{NileAuthError, query, with_context};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use uuid::Uuid;

type Result<T> = std::result::Result<T, NileAuthError>;

const POOL_SIZE: u32 = 4;

struct Listing {
    user_id: Option<Uuid>,
    pid: i32,
    names: Vec<String>,
}

/// The app's request handlers: each returns what an HTTP handler would serialize, or a
/// NileAuthError whose `.status` it would send.
struct Api {
    pool: PgPool,
    /// Connected as the trusted backend role (NILE_DB_BACKEND_USER), for jobs with no end user.
    backend: PgPool,
}

impl Api {
    /// Signing up and refreshing need no identity; they still run in a transaction, because
    /// through pgbouncer every statement must (see `with_context`).
    async fn signup(&self, email: &str, password: &str) -> Result<Value> {
        self.without_token(None, async |c| json(c, "SELECT nile_auth.signup($1, $2)", &[email, password]).await)
            .await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Value> {
        self.without_token(None, async |c| json(c, "SELECT nile_auth.refresh($1)", &[refresh_token]).await).await
    }

    async fn logout(&self, token: &str) -> Result<i64> {
        with_context(&self.pool, Some(token), None, async |c| {
            query("SELECT nile_auth.logout()").fetch_one(c).await?.try_get(0)
        })
        .await
    }

    async fn create_tenant(&self, token: &str, name: &str) -> Result<Value> {
        with_context(&self.pool, Some(token), None, async |c| {
            json(c, "SELECT nile_auth.create_tenant($1)", &[name]).await
        })
        .await
    }

    async fn add_member(&self, token: &str, tenant: Uuid, email: &str) -> Result<Value> {
        with_context(&self.pool, Some(token), None, async |c| {
            query("SELECT nile_auth.add_member($1, $2)").bind(tenant).bind(email).fetch_one(c).await?.try_get(0)
        })
        .await
    }

    async fn create_cluster(&self, token: &str, tenant: Option<Uuid>, name: &str) -> Result<(Uuid, Uuid)> {
        with_context(&self.pool, Some(token), tenant, async |c| {
            let row = query("INSERT INTO clustify.clusters (name) VALUES ($1) RETURNING id, tenant_id")
                .bind(name)
                .fetch_one(c)
                .await?;
            Ok((row.try_get("id")?, row.try_get("tenant_id")?))
        })
        .await
    }

    /// A row naming another tenant than the context's: refused by the policy, not by set_context.
    async fn plant_cluster(&self, token: &str, tenant: Uuid, other: Uuid, name: &str) -> Result<u64> {
        with_context(&self.pool, Some(token), Some(tenant), async |c| {
            Ok(query("INSERT INTO clustify.clusters (name, tenant_id) VALUES ($1, $2)")
                .bind(name)
                .bind(other)
                .execute(c)
                .await?
                .rows_affected())
        })
        .await
    }

    /// A job with no end user, as the trusted backend role: the tenant is a bind parameter of
    /// set_tenant(…, true), checked and scoped to the transaction, which is rolled back (the
    /// job's insert leaves no row). Returns the rows it sees.
    async fn backend_count(&self, tenant: Option<Uuid>) -> Result<i64> {
        let mut tx = self.backend.begin().await?;
        if let Some(tenant) = tenant {
            query("SELECT nile_auth.set_tenant($1, true)").bind(tenant).execute(&mut *tx).await?;
        }
        query("INSERT INTO clustify.clusters (name) VALUES ('backend job')").execute(&mut *tx).await?;
        let count = query("SELECT count(*) FROM clustify.clusters").fetch_one(&mut *tx).await?.try_get(0)?;
        tx.rollback().await?;
        Ok(count)
    }

    async fn rename_cluster(&self, token: &str, tenant: Uuid, id: Uuid, name: &str) -> Result<u64> {
        with_context(&self.pool, Some(token), Some(tenant), async |c| {
            Ok(query("UPDATE clustify.clusters SET name = $2 WHERE id = $1")
                .bind(id)
                .bind(name)
                .execute(c)
                .await?
                .rows_affected())
        })
        .await
    }

    async fn list_clusters(&self, token: Option<&str>, tenant: Uuid) -> Result<Listing> {
        with_context(&self.pool, token, Some(tenant), list_clusters).await
    }

    /// A handler that forgot `with_context`: the tenant alone, transaction-local and bound, is
    /// refused for an end-user role without a token (28000); with no tenant it sees nothing.
    async fn list_clusters_without_token(&self, tenant: Option<Uuid>) -> Result<Listing> {
        self.without_token(tenant, list_clusters).await
    }

    /// One transaction with no token, and the tenant (if any) as a transaction-local setting.
    async fn without_token<T>(
        &self,
        tenant: Option<Uuid>,
        f: impl AsyncFnOnce(&mut PgConnection) -> std::result::Result<T, sqlx::Error>,
    ) -> Result<T> {
        let mut tx = self.pool.begin().await?;
        if let Some(tenant) = tenant {
            query("SELECT set_config('nile.tenant_id', $1, true)").bind(tenant.to_string()).execute(&mut *tx).await?;
        }
        let value = f(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }
}

/// The single jsonb value a nile_auth function returns: sqlx decodes it into a serde_json Value.
async fn json(c: &mut PgConnection, sql: &str, args: &[&str]) -> std::result::Result<Value, sqlx::Error> {
    let mut q = query(sql);
    for arg in args {
        q = q.bind(*arg);
    }
    q.fetch_one(c).await?.try_get(0)
}

async fn list_clusters(c: &mut PgConnection) -> std::result::Result<Listing, sqlx::Error> {
    let names = query("SELECT name FROM clustify.clusters ORDER BY name")
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    let who = query("SELECT nile_auth.user_id(), pg_backend_pid()").fetch_one(&mut *c).await?;
    Ok(Listing { user_id: who.try_get(0)?, pid: who.try_get(1)?, names })
}

struct Checks {
    label: String,
}

impl Checks {
    fn check<T: PartialEq + Debug>(&self, name: &str, expected: T, actual: T) {
        if expected != actual {
            println!("FAIL: {}: {name}: expected {expected:?}, got {actual:?}", self.label);
            std::process::exit(1); // the first failed check ends the run, as tests/client/*.sh do
        }
        println!("ok: {}: {name}", self.label);
    }

    /// A request that should have succeeded: its value, or FAIL with its status and message.
    fn ok<T>(&self, what: &str, r: Result<T>) -> T {
        r.unwrap_or_else(|e| {
            println!("FAIL: {}: {what}: {} {:?} {}", self.label, e.status, e.sqlstate, e.message);
            std::process::exit(1);
        })
    }
}

/// The HTTP status a request fails with, or 200 if it succeeds.
fn status<T>(r: Result<T>) -> u16 {
    r.map_or_else(|e| e.status, |_| 200)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string {key} in {v}"))
}

fn uuid_of(v: &Value, key: &str) -> Uuid {
    Uuid::parse_str(str_of(v, key)).unwrap_or_else(|_| panic!("{key} in {v} is not a uuid"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let options = PgConnectOptions::new()
        .host(&var("NILE_DB_HOST"))
        .port(var("NILE_DB_PORT").parse().expect("NILE_DB_PORT"))
        .database(&var("NILE_DB_NAME"))
        .username(&var("NILE_DB_USER"))
        // pgbouncer refuses startup parameters it does not know (08P01), and sqlx sends
        // extra_float_digits by default; PostgreSQL 12+ needs it for no float's sake.
        .extra_float_digits(None);
    let pool = PgPoolOptions::new().max_connections(POOL_SIZE).connect_with(options.clone()).await.expect("connect");
    let backend = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.username(&var("NILE_DB_BACKEND_USER")))
        .await
        .expect("connect as the backend role");
    let via = std::env::var("NILE_VIA").unwrap_or_else(|_| "direct".into());
    let run = std::env::var("NILE_RUN").unwrap_or_else(|_| std::process::id().to_string());
    story(&Checks { label: format!("sqlx/{via}") }, &Api { pool: pool.clone(), backend: backend.clone() }, &run).await;
    pool.close().await;
    backend.close().await;
}

async fn story(t: &Checks, api: &Api, run: &str) {
    let password = "correct horse battery";

    // 1. Sign up, tenants, membership.
    let shaun = t.ok("signup shaun", api.signup(&format!("shaun-{run}-sqlx@clustify.dev"), password).await);
    let mary = t.ok("signup mary", api.signup(&format!("mary-{run}-sqlx@clustify.dev"), password).await);
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    t.check(
        "signup returns {id, email, tenants, token {jwt, maxAge, type}, refreshToken, sessionId}",
        (
            vec!["email", "id", "refreshToken", "sessionId", "tenants", "token"],
            vec!["jwt", "maxAge", "type"],
            "ACCESS_TOKEN",
            &Value::Array(vec![]),
            "nrt_",
        ),
        (
            keys(&shaun).iter().map(String::as_str).collect(),
            keys(&shaun["token"]).iter().map(String::as_str).collect(),
            str_of(&shaun["token"], "type"),
            &shaun["tenants"],
            &str_of(&shaun, "refreshToken")[..4],
        ),
    );
    let shaun_jwt = str_of(&shaun["token"], "jwt");
    let mary_jwt = str_of(&mary["token"], "jwt");
    let (shaun_id, mary_id) = (uuid_of(&shaun, "id"), uuid_of(&mary, "id"));
    let managed = t.ok("create Managed Expenses", api.create_tenant(shaun_jwt, "Managed Expenses").await);
    let side = t.ok("create side project", api.create_tenant(mary_jwt, "side project").await);
    t.check(
        "shaun creates \"Managed Expenses\", mary \"side project\"",
        ("Managed Expenses", "side project"),
        (str_of(&managed, "name"), str_of(&side, "name")),
    );
    let (managed_id, side_id) = (uuid_of(&managed, "id"), uuid_of(&side, "id"));
    let membership = t.ok("add mary", api.add_member(shaun_jwt, managed_id, str_of(&mary, "email")).await);
    t.check(
        "shaun adds mary to Managed Expenses as a member",
        (managed_id, mary_id, &serde_json::json!(["member"])),
        (uuid_of(&membership, "tenantId"), uuid_of(&membership, "userId"), &membership["roles"]),
    );

    // 2. Tenant isolation.
    let names = |r: Result<Listing>, what: &str| t.ok(what, r).names;
    let (first, first_tenant) = t.ok("create MyFirstCluster", api.create_cluster(shaun_jwt, Some(managed_id), "MyFirstCluster").await);
    t.check("shaun inserts MyFirstCluster; tenant_id filled in from the context", managed_id, first_tenant);
    t.check(
        "mary in Managed Expenses sees it",
        vec!["MyFirstCluster".to_string()],
        names(api.list_clusters(Some(mary_jwt), managed_id).await, "mary lists"),
    );
    t.check(
        "mary renames it",
        1,
        t.ok("rename", api.rename_cluster(mary_jwt, managed_id, first, "MyFirstCluster (renamed)").await),
    );
    let (toy, toy_tenant) = t.ok("create toy", api.create_cluster(mary_jwt, Some(side_id), "toy").await);
    t.check("mary in side project creates toy", side_id, toy_tenant);
    t.check(
        "shaun in Managed Expenses lists only the renamed cluster, never toy",
        vec!["MyFirstCluster (renamed)".to_string()],
        names(api.list_clusters(Some(shaun_jwt), managed_id).await, "shaun lists"),
    );
    t.check(
        "an update of toy from Managed Expenses touches no row",
        0,
        t.ok("rename toy", api.rename_cluster(mary_jwt, managed_id, toy, "hijacked").await),
    );
    t.check("shaun asking for side project gets 403", 403, status(api.list_clusters(Some(shaun_jwt), side_id).await));
    t.check(
        "a write with no tenant says so: 409, no tenant is set",
        Some((409, "no tenant is set".to_string())),
        api.create_cluster(shaun_jwt, None, "nowhere").await.err().map(|e| (e.status, e.message)),
    );
    // The two 403s are told apart by message and hint.
    let refusal = |r: Result<u64>| {
        r.err().map(|e| {
            let message = e.message.split(' ').map(|w| if Uuid::parse_str(w).is_ok() { "<uuid>" } else { w });
            (e.status, message.collect::<Vec<_>>().join(" "), e.hint.is_some_and(|h| h.contains("list_tenants()")))
        })
    };
    t.check(
        "not a member: 403, says so, and the hint points to list_tenants()",
        Some((403, "user <uuid> is not a member of tenant <uuid>".to_string(), true)),
        refusal(api.rename_cluster(shaun_jwt, side_id, toy, "intruder").await),
    );
    t.check(
        "a row naming another tenant (mary is a member of both): 403, the policy's message, no hint",
        Some((403, "new row violates row-level security policy for table \"clusters\"".to_string(), false)),
        refusal(api.plant_cluster(mary_jwt, managed_id, side_id, "planted").await),
    );
    t.check(
        "a trusted backend job in Managed Expenses sees its rows (and its own insert)",
        2,
        t.ok("backend job", api.backend_count(Some(managed_id)).await),
    );
    t.check(
        "a trusted backend job with no tenant: 409, no tenant is set",
        Some((409, "no tenant is set".to_string())),
        api.backend_count(None).await.err().map(|e| (e.status, e.message)),
    );

    // 3. No token, bad token.
    t.check(
        "no token (no set_context), tenant named: 401",
        401,
        status(api.list_clusters_without_token(Some(managed_id)).await),
    );
    let nothing = t.ok("no token, no tenant", api.list_clusters_without_token(None).await);
    t.check("no token and no tenant: no rows, no user", (vec![], None), (nothing.names, nothing.user_id));
    t.check("missing token through with_context: 401", 401, status(api.list_clusters(None, managed_id).await));
    t.check("bad token: 401", 401, status(api.list_clusters(Some("not-a-token"), managed_id).await));

    // 4. Concurrency: 40 requests over the pool, alternating users; a response carrying the other
    // user's identity or rows would mean context crossed from one request to the next.
    let expected = [
        (shaun_id, shaun_jwt, managed_id, vec!["MyFirstCluster (renamed)".to_string()]),
        (mary_id, mary_jwt, side_id, vec!["toy".to_string()]),
    ];
    let responses = join_all((0..40).map(|i| {
        let (user, token, tenant, _) = &expected[i % 2];
        async move { (*user, api.list_clusters(Some(token), *tenant).await) }
    }))
    .await;
    let mut crossed = Vec::new();
    let mut users_by_pid: BTreeMap<i32, BTreeSet<Uuid>> = BTreeMap::new();
    for (i, (user, response)) in responses.into_iter().enumerate() {
        let listing = t.ok("a concurrent request", response);
        let (_, _, _, names) = &expected[i % 2];
        if listing.user_id != Some(user) || &listing.names != names {
            crossed.push((i, listing.user_id, listing.names));
        }
        users_by_pid.entry(listing.pid).or_default().insert(user);
    }
    t.check("40 concurrent requests: each sees only its user's rows and user_id()", vec![], crossed);
    t.check("some server backend served both users in turn", true, users_by_pid.values().any(|u| u.len() == 2));
    // Hold every pooled connection at once, so each is checked, and ask it who it is.
    let mut held = Vec::new();
    for _ in 0..POOL_SIZE {
        held.push(api.pool.acquire().await.expect("acquire"));
    }
    let mut idle = Vec::new();
    for conn in &mut held {
        let mut tx = conn.begin().await.expect("begin");
        let row = query(
            "SELECT nile_auth.user_id(), coalesce(current_setting('nile.tenant_id', true), ''),
                    coalesce(current_setting('nile.auth_token', true), '')",
        )
        .fetch_one(&mut *tx)
        .await
        .expect("ask a pooled connection who it is");
        tx.rollback().await.expect("rollback");
        idle.push((row.get::<Option<Uuid>, _>(0), row.get::<String, _>(1), row.get::<String, _>(2)));
    }
    drop(held);
    t.check(
        &format!("afterwards each of the {POOL_SIZE} pooled connections has no identity, tenant or token"),
        vec![(None, String::new(), String::new()); POOL_SIZE as usize],
        idle,
    );

    // 5. Refresh and logout (after the concurrency check: logout ends Shaun's session).
    let renewed = t.ok("refresh", api.refresh(str_of(&shaun, "refreshToken")).await);
    let renewed_jwt = str_of(&renewed["token"], "jwt");
    t.check(
        "refresh: a new access token and refresh token for the same session",
        (str_of(&shaun, "sessionId"), true, true),
        (
            str_of(&renewed, "sessionId"),
            renewed_jwt != shaun_jwt,
            str_of(&renewed, "refreshToken") != str_of(&shaun, "refreshToken"),
        ),
    );
    let as_renewed = t.ok("list as renewed", api.list_clusters(Some(renewed_jwt), managed_id).await);
    t.check(
        "the refreshed token works",
        (Some(shaun_id), vec!["MyFirstCluster (renamed)".to_string()]),
        (as_renewed.user_id, as_renewed.names),
    );
    t.check("logout with it ends one session", 1, t.ok("logout", api.logout(renewed_jwt).await));
    t.check("after logout that token gets 401", 401, status(api.list_clusters(Some(renewed_jwt), managed_id).await));
    t.check("and so does the session's first token", 401, status(api.list_clusters(Some(shaun_jwt), managed_id).await));
    t.check(
        "mary is still signed in",
        vec!["toy".to_string()],
        names(api.list_clusters(Some(mary_jwt), side_id).await, "mary lists toy"),
    );

    // 6. A taken email: signup raises 23505.
    t.check(
        "duplicate signup (other letter case): 409",
        409,
        status(api.signup(&str_of(&shaun, "email").to_uppercase(), "another password").await),
    );
}
