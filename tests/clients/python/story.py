"""The Clustify story, shared by the Python apps: it calls an app's request functions (each one
web request: a pooled connection, one transaction, a (status, body) answer) and checks every
outcome, printing "ok: ..." and exiting 1 at the first failure.

An app module provides: signup(email, password), refresh(refresh_token), logout(token),
create_tenant(token, name), add_member(token, tenant, email), create_cluster(token, tenant,
name), rename_cluster(token, tenant, id, name), list_clusters(token, tenant) -> {"user",
"clusters", "backend"}, list_without_context(tenant) (the same query with no set_context, as a
buggy request would run it), idle_contexts() -> what each pooled connection sees outside any
request, and close().
"""
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

PASSWORD = "correct horse battery"
POOL_SIZE = 4  # every app's pool: fewer connections than the concurrent requests below


def connection_settings():
    """The harness's database, and whether we go through pgbouncer in transaction mode."""
    env = os.environ
    return (dict(host=env["NILE_DB_HOST"], port=env["NILE_DB_PORT"], dbname=env["NILE_DB_NAME"],
                 user=env["NILE_DB_USER"]), env["NILE_VIA"] == "pgbouncer")


def backend_user():
    """The trusted backend role (a member of nile_auth_backend), for jobs with no end user."""
    return os.environ["NILE_DB_BACKEND_USER"]


def run(app, stack):
    label = f"{stack}/{os.environ['NILE_VIA']}"
    run_id = os.environ["NILE_RUN"]

    def check(name, expected, actual):
        if expected == actual:
            print(f"ok: {label}: {name}", flush=True)
        else:
            print(f"FAIL: {label}: {name}: expected [{expected!r}], got [{actual!r}]", flush=True)
            app.close()
            sys.exit(1)

    def ok(name, response):  # a 200 response's body
        check(f"{name} (200)", 200, response[0])
        return response[1]

    # 1. Sign-ups, tenants, membership.
    shaun_email = f"shaun-{run_id}-{stack}@clustify.dev"
    mary_email = f"mary-{run_id}-{stack}@clustify.dev"
    shaun = ok("Shaun signs up", app.signup(shaun_email, PASSWORD))
    check("signup returns id, email, tenants, token, refreshToken, sessionId",
          ["email", "id", "refreshToken", "sessionId", "tenants", "token"], sorted(shaun))
    check("signup's token is an access token",
          (["jwt", "maxAge", "type"], "ACCESS_TOKEN", True),
          (sorted(shaun["token"]), shaun["token"]["type"], shaun["refreshToken"].startswith("nrt_")))
    check("signup with no new tenant: no tenants", (shaun_email, []), (shaun["email"], shaun["tenants"]))
    mary = ok("Mary signs up", app.signup(mary_email, PASSWORD))
    shaun_token, mary_token = shaun["token"]["jwt"], mary["token"]["jwt"]

    managed = ok("Shaun creates Managed Expenses", app.create_tenant(shaun_token, "Managed Expenses"))
    check("create_tenant returns {id, name}", ["id", "name"], sorted(managed))
    side = ok("Mary creates side project", app.create_tenant(mary_token, "side project"))
    member = ok("Shaun adds Mary", app.add_member(shaun_token, managed["id"], mary_email))
    check("Mary is a member of Managed Expenses", (managed["id"], mary["id"], ["member"]),
          (member["tenantId"], member["userId"], member["roles"]))
    check("adding to a tenant that does not exist: 404", 404,
          app.add_member(mary_token, str(uuid.uuid4()), mary_email)[0])

    # 2. Tenant isolation. Tenant ids go in as str here and as uuid.UUID below: both bind.
    first = ok("Shaun creates MyFirstCluster in Managed Expenses",
               app.create_cluster(shaun_token, managed["id"], "MyFirstCluster"))
    seen = ok("Mary lists Managed Expenses", app.list_clusters(mary_token, uuid.UUID(managed["id"])))
    check("Mary sees MyFirstCluster", ["MyFirstCluster"], seen["clusters"])
    renamed = ok("Mary renames it", app.rename_cluster(mary_token, uuid.UUID(managed["id"]),
                                                       first["id"], "MyFirstCluster (Mary)"))
    check("the rename touched one row", 1, renamed)
    ok("Mary creates toy in side project", app.create_cluster(mary_token, side["id"], "toy"))
    seen = ok("Shaun lists Managed Expenses", app.list_clusters(shaun_token, managed["id"]))
    check("Shaun sees only the renamed cluster (never toy)", ["MyFirstCluster (Mary)"], seen["clusters"])
    check("the request ran as Shaun", shaun["id"], str(seen["user"]))
    seen = ok("Mary lists side project", app.list_clusters(mary_token, side["id"]))
    check("Mary sees only toy in side project", ["toy"], seen["clusters"])
    check("Shaun asking for side project: 403", 403, app.list_clusters(shaun_token, side["id"])[0])
    check("Shaun cannot write into side project: 403", 403,
          app.create_cluster(shaun_token, side["id"], "intruder")[0])
    check("a write with no tenant says so: 409, no tenant is set", (409, "no tenant is set"),
          app.create_cluster(shaun_token, None, "nowhere"))
    # The two 403s are told apart by their messages (and hints, NileAuthError.hint).
    check("not a member: the message says so", True,
          "is not a member of tenant" in app.create_cluster(shaun_token, side["id"], "intruder")[1])
    if hasattr(app, "plant_cluster"):
        check("a row naming another tenant (Mary is a member of both): 403, the policy's message",
              (403, True), (lambda r: (r[0], "violates row-level security policy" in r[1]))(
                  app.plant_cluster(mary_token, managed["id"], side["id"], "planted")))
    if hasattr(app, "backend_count"):
        check("a trusted backend job in Managed Expenses sees its rows (and its own insert)", (200, 2),
              app.backend_count(managed["id"]))
        check("a trusted backend job with no tenant: 409, no tenant is set", (409, "no tenant is set"),
              app.backend_count(None))

    # 3. No token, bad token. A missing token is sent as '' and refused like a bad one.
    check("no token: 401", 401, app.list_clusters(None, managed["id"])[0])
    check("a bad token: 401", 401, app.list_clusters("not-a-token", managed["id"])[0])
    # A request that skips set_context: with no tenant it fails closed (no rows, no user); once
    # it names a tenant, the end-user role without a token gets 28000 from nile_auth.tenant_id().
    check("no set_context at all: 200, no rows, no user", (200, [], None),
          (lambda r: (r[0], r[1]["clusters"], r[1]["user"]))(app.list_without_context(None)))
    check("no set_context but a tenant set: 401", 401, app.list_without_context(managed["id"])[0])

    # 4. Concurrency: more requests than threads, more threads than pooled connections, users
    # alternating, so connections pass from one user to the other all the time.
    users = {shaun["id"]: (shaun_token, managed["id"], ["MyFirstCluster (Mary)"]),
             mary["id"]: (mary_token, side["id"], ["toy"])}
    order = [shaun["id"], mary["id"]] * 20
    with ThreadPoolExecutor(max_workers=8) as threads:
        answers = list(threads.map(lambda u: app.list_clusters(*users[u][:2]), order))
    check("40 concurrent requests: every one 200", [200] * 40, [status for status, _ in answers])
    check("every response is its own user's, with only that user's rows",
          [(u, users[u][2]) for u in order], [(str(b["user"]), b["clusters"]) for _, b in answers])
    served = {}
    for u, (_, body) in zip(order, answers):
        served.setdefault(body["backend"], set()).add(u)
    check("backends were shared between the two users (the test means something)",
          True, any(len(us) == 2 for us in served.values()))
    idle = app.idle_contexts()
    check(f"each of the {POOL_SIZE} pooled connections, outside a request, has no identity, tenant or token",
          [(None, "", False)] * POOL_SIZE, [(u, t or "", bool(token)) for u, t, token in idle])

    # 5. Sessions: refresh, then log out.
    renewed = ok("refresh", app.refresh(shaun["refreshToken"]))
    check("refresh keeps the session and rotates the refresh token", (shaun["sessionId"], True),
          (renewed["sessionId"], renewed["refreshToken"] != shaun["refreshToken"]))
    new_token = renewed["token"]["jwt"]
    seen = ok("the refreshed token works", app.list_clusters(new_token, managed["id"]))
    check("as Shaun", shaun["id"], str(seen["user"]))
    check("logout ends one session", 1, ok("logout", app.logout(new_token)))
    check("the logged-out token: 401", 401, app.list_clusters(new_token, managed["id"])[0])
    check("the session's earlier token: 401", 401, app.list_clusters(shaun_token, managed["id"])[0])
    check("Mary's session is untouched", 200, app.list_clusters(mary_token, side["id"])[0])

    # 6. A taken email (any letter case) is 23505.
    check("duplicate signup: 409", 409, app.signup(shaun_email.upper(), PASSWORD)[0])
    check("short password: 400", 400, app.signup(f"x-{run_id}-{stack}@clustify.dev", "short")[0])
    app.close()
