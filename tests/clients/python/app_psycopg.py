"""Clustify on psycopg 3 with psycopg_pool: each request is one pooled connection and one
transaction that starts with set_context (nile_auth_client.request_context)."""
import sys

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from nile_auth_client import NileAuthError, request_context
import story

settings, via_pgbouncer = story.connection_settings()
pool = ConnectionPool(
    kwargs=dict(
        settings,
        # request_context's conn.transaction() is then exactly BEGIN … COMMIT, and a connection
        # goes back to the pool idle.
        autocommit=True,
        # pgbouncer in transaction mode (1.18 has no prepared-statement support) hands each
        # transaction whichever server connection is free, so psycopg's automatic prepared
        # statements (from a query's 5th run on a connection) break: another client already
        # prepared "_pg3_0" on that server connection (42P05 "already exists"), or it was
        # prepared on another one (26000 "does not exist"). None turns them off; a direct
        # connection keeps psycopg's default, 5.
        prepare_threshold=None if via_pgbouncer else 5,
    ),
    min_size=story.POOL_SIZE, max_size=story.POOL_SIZE, open=True)


def _respond(context, action, args, connect=pool.connection):
    try:
        with connect() as conn, context(conn):
            return 200, action(conn, *args)
    except psycopg.Error as e:
        error = NileAuthError.from_db_error(e)
        return error.status, error.message


def handle(token, tenant, action, *args):
    """An end user's request: action(conn, *args) in one transaction as the token's user in the
    tenant; (status, body)."""
    return _respond(lambda conn: request_context(conn, token, tenant), action, args)


def public(action, *args):
    """A request with no user (signup, refresh): a plain transaction."""
    return _respond(lambda conn: conn.transaction(), action, args)


def value(conn, query, params=()):
    return conn.execute(query, params).fetchone()[0]


# The requests. Functions return jsonb as dicts and uuid as uuid.UUID.
def signup(email, password):
    return public(value, "SELECT nile_auth.signup(%s, %s)", (email, password))


def refresh(refresh_token):
    return public(value, "SELECT nile_auth.refresh(%s)", (refresh_token,))


def logout(token):
    return handle(token, None, value, "SELECT nile_auth.logout()")


def create_tenant(token, name):
    return handle(token, None, value, "SELECT nile_auth.create_tenant(%s)", (name,))


def add_member(token, tenant, email):
    return handle(token, None, value, "SELECT nile_auth.add_member(%s::uuid, %s)", (tenant, email))


def create_cluster(token, tenant, name):  # tenant_id comes from the context (column default)
    return handle(token, tenant, lambda conn: conn.cursor(row_factory=dict_row).execute(
        "INSERT INTO clustify.clusters (name) VALUES (%s) RETURNING id, name", (name,)).fetchone())


def rename_cluster(token, tenant, cluster_id, name):
    return handle(token, tenant, lambda conn: conn.execute(
        "UPDATE clustify.clusters SET name = %s WHERE id = %s", (name, cluster_id)).rowcount)


def _list(conn):
    names = [n for n, in conn.execute("SELECT name FROM clustify.clusters ORDER BY name")]
    user, backend = conn.execute("SELECT nile_auth.user_id(), pg_backend_pid()").fetchone()
    return {"user": user, "clusters": names, "backend": backend}


def list_clusters(token, tenant):
    return handle(token, tenant, _list)


def list_without_context(tenant):
    """A buggy request that skips set_context, at most setting the tenant by itself."""
    def request(conn):
        if tenant is not None:
            conn.execute("SELECT set_config('nile.tenant_id', %s, true)", (tenant,))
        return _list(conn)
    return public(request)


def plant_cluster(token, tenant, other_tenant, name):
    """A write in one tenant of a row naming another: refused by the policy, not by set_context."""
    return handle(token, tenant, lambda conn: conn.execute(
        "INSERT INTO clustify.clusters (name, tenant_id) VALUES (%s, %s::uuid)", (name, other_tenant)).rowcount)


def backend_count(tenant):
    """A job with no end user, as the trusted backend role (NILE_DB_BACKEND_USER): the tenant is
    a bind parameter to set_tenant(…, true), checked and scoped to this transaction."""
    def job(conn):
        if tenant is not None:
            conn.execute("SELECT nile_auth.set_tenant(%s::uuid, true)", (tenant,))
        conn.execute("INSERT INTO clustify.clusters (name) VALUES ('backend job')")
        return conn.execute("SELECT count(*) FROM clustify.clusters").fetchone()[0]
    def connect():
        return psycopg.connect(**dict(settings, user=story.backend_user()), autocommit=True,
                               prepare_threshold=None)
    return _respond(lambda conn: conn.transaction(force_rollback=True), job, (), connect)


def idle_contexts():
    """What each pooled connection sees between requests: all of them held at once."""
    conns = [pool.getconn() for _ in range(story.POOL_SIZE)]
    try:
        return [conn.execute("SELECT nile_auth.user_id(), current_setting('nile.tenant_id', true),"
                             " current_setting('nile.auth_token', true)").fetchone() for conn in conns]
    finally:
        for conn in conns:
            pool.putconn(conn)


def close():
    pool.close()


if __name__ == "__main__":
    story.run(sys.modules[__name__], "psycopg")
