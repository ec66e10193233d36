"""nile_auth for Python web apps: per-request identity and tenant, and errors as HTTP statuses.

Plain package: put clients/python on PYTHONPATH. Works with psycopg 3 directly
(request_context) and with the SQLAlchemy 2 ORM over psycopg (install_sqlalchemy_context,
session_scope). Values need no adapters: psycopg 3 returns jsonb as dicts and lists and uuid as
uuid.UUID. A uuid argument takes a uuid.UUID or a str, but where a str is bound as text (::text,
or SQLAlchemy's func, which renders ::VARCHAR) no function matches (42883): cast it, ::uuid.
"""
from contextlib import contextmanager

from psycopg import pq

# SQLSTATE -> HTTP status: the one table (docs/apps.md quotes it). Anything else is a 500.
HTTP_STATUS = {
    "28000": 401,  # bad, expired or missing token; ended session; invalid refresh token
    "28P01": 401,  # wrong email or password (one message for both)
    "42501": 403,  # not a member of the tenant, or not allowed to do this
    "P0002": 404,  # no such tenant, user, team, session (or one the caller may not see)
    "23505": 409,  # email already registered
    "55000": 409,  # state conflict: no tenant set, last owner of a tenant
    "22023": 400,  # bad input: malformed email, short password, NULL argument
    "22P02": 400,  # not a uuid
    "40001": 503,  # serialization failure: retry
}

# Bind parameters: the token never appears in statement text, logs or pg_stat_activity (SET
# LOCAL cannot take a parameter). The tenant is cast, so the call resolves however it is bound
# (as text it would miss set_context(text, uuid): 42883). Both settings end with the transaction.
SET_CONTEXT = "SELECT nile_auth.set_context(%s, %s::uuid)"


class NileAuthError(Exception):
    """A database error as an HTTP status, with the SQLSTATE, the server's message and its hint
    (what to do: the two 42501s, "not a member" and a row of another tenant, differ in both)."""

    def __init__(self, status, sqlstate, message, hint=None):
        super().__init__(f"{status} ({sqlstate}): {message}")
        self.status, self.sqlstate, self.message, self.hint = status, sqlstate, message, hint

    @classmethod
    def from_db_error(cls, e):
        """From a psycopg error, or a SQLAlchemy DBAPIError wrapping one (its .orig). Only the
        server's own fields are kept: SQLAlchemy's str(e) lists the statement's parameters, the
        token among them, so it never becomes the message."""
        e = getattr(e, "orig", None) or e
        sqlstate = getattr(e, "sqlstate", None)
        diag = getattr(e, "diag", None)
        message = diag and diag.message_primary
        if not message:  # not a server error (a lost connection, say): psycopg's own text
            message = str(e) if hasattr(e, "sqlstate") else "internal error"
        return cls(HTTP_STATUS.get(sqlstate, 500), sqlstate, message, diag and diag.message_hint)


from_db_error = NileAuthError.from_db_error


@contextmanager
def request_context(conn, token, tenant_id=None):
    """One transaction on a psycopg 3 connection as the token's user, in tenant_id (or none).

    A missing token (None) is sent as '', so it is refused like a bad one (28000, 401) rather
    than as a NULL argument (22023, 400). Requests with no user (signup, login, refresh) need
    no context: a plain conn.transaction(). The connection must be idle: inside an open
    transaction this would only be a savepoint, and the context would last as long as that
    outer transaction.
    """
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise RuntimeError("request_context needs an idle connection, not one in a transaction")
    with conn.transaction():
        conn.execute(SET_CONTEXT, (token or "", tenant_id))
        yield conn


def install_sqlalchemy_context(session_factory):
    """Makes every transaction of a session from session_factory (a sessionmaker or Session
    class) that has a "nile_auth" entry in session.info (see session_scope) start with
    set_context for that token and tenant, so ORM code stays plain. Sessions without the entry
    (signup, login, refresh) run with no identity."""
    from sqlalchemy import event

    @event.listens_for(session_factory, "after_begin")
    def _set_context(session, transaction, connection):
        if "nile_auth" in session.info:
            token, tenant_id = session.info["nile_auth"]
            # exec_driver_sql: psycopg's own %s placeholders, bound exactly as in request_context.
            connection.exec_driver_sql(SET_CONTEXT, (token or "", tenant_id))

    return session_factory


@contextmanager
def session_scope(session_factory, token, tenant_id=None):
    """One request's ORM session and transaction as the token's user, in tenant_id (or none):
    commits on success, rolls back on error. Needs install_sqlalchemy_context(session_factory)."""
    with session_factory(info={"nile_auth": (token, tenant_id)}) as session, session.begin():
        yield session
