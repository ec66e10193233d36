"""Clustify on the SQLAlchemy 2 ORM over psycopg 3: each request is one Session and one
transaction; nile_auth_client.install_sqlalchemy_context runs set_context as each transaction
begins, so the ORM code below is plain."""
import sys
import uuid

from sqlalchemy import FetchedValue, create_engine, func, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from nile_auth_client import NileAuthError, install_sqlalchemy_context, session_scope
import story

settings, via_pgbouncer = story.connection_settings()
engine = create_engine(
    URL.create("postgresql+psycopg", username=settings["user"], database=settings["dbname"],
               query={"host": settings["host"], "port": settings["port"]}),
    pool_size=story.POOL_SIZE, max_overflow=0,
    # SQLAlchemy's errors and echo logs list a statement's parameters: the token set_context binds.
    hide_parameters=True,
    # Behind pgbouncer in transaction mode, no server-side prepared statements (see app_psycopg).
    connect_args={"prepare_threshold": None} if via_pgbouncer else {})
Session = install_sqlalchemy_context(sessionmaker(engine))


class Base(DeclarativeBase):
    pass


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = {"schema": "clustify"}
    # Both filled in by the database: tenant_id from the request's tenant (its column default,
    # nile_auth.tenant_id()), id by gen_random_uuid(). FetchedValue makes the ORM read them back.
    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=FetchedValue())
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=FetchedValue())
    name: Mapped[str]


def _respond(scope, action, args):
    try:
        with scope as session:
            return 200, action(session, *args)
    except DBAPIError as e:
        error = NileAuthError.from_db_error(e)
        return error.status, error.message


def handle(token, tenant, action, *args):
    """An end user's request: action(session, *args) in one session and transaction as the
    token's user in the tenant; (status, body)."""
    return _respond(session_scope(Session, token, tenant), action, args)


def public(action, *args):
    """A request with no user (signup, refresh): a session with no context."""
    return _respond(Session.begin(), action, args)


def call(session, function, *args):  # a nile_auth function: jsonb comes back as dicts
    return session.scalar(select(getattr(func.nile_auth, function)(*args)))


def signup(email, password):
    return public(call, "signup", email, password)


def refresh(refresh_token):
    return public(call, "refresh", refresh_token)


def logout(token):
    return handle(token, None, call, "logout")


def create_tenant(token, name):
    return handle(token, None, call, "create_tenant", name)


def add_member(token, tenant, email):
    # Not call(): func binds a str as ::VARCHAR, and there is no add_member(varchar, …) (42883).
    # CAST it (or pass a uuid.UUID, which binds as ::UUID).
    return handle(token, None, lambda session: session.scalar(
        text("SELECT nile_auth.add_member(CAST(:tenant AS uuid), :email)"),
        {"tenant": tenant, "email": email}))


def _create(session, name):
    cluster = Cluster(name=name)
    session.add(cluster)
    session.flush()
    return {"id": cluster.id, "name": cluster.name}


def create_cluster(token, tenant, name):
    return handle(token, tenant, _create, name)


def rename_cluster(token, tenant, cluster_id, name):
    return handle(token, tenant, lambda session: session.execute(
        update(Cluster).where(Cluster.id == cluster_id).values(name=name)).rowcount)


def _list(session):
    names = session.scalars(select(Cluster.name).order_by(Cluster.name)).all()
    user, backend = session.execute(select(func.nile_auth.user_id(), func.pg_backend_pid())).one()
    return {"user": user, "clusters": names, "backend": backend}


def list_clusters(token, tenant):
    return handle(token, tenant, _list)


def list_without_context(tenant):
    """A buggy request that skips set_context, at most setting the tenant by itself."""
    def request(session):
        if tenant is not None:
            session.execute(select(func.set_config("nile.tenant_id", str(tenant), True)))
        return _list(session)
    return public(request)


def idle_contexts():
    """What each pooled connection sees between requests: all of them held at once, each
    query its own transaction (one open transaction would hold pgbouncer's one server
    connection while the next connection waits for it)."""
    conns = [engine.connect() for _ in range(story.POOL_SIZE)]
    try:
        return [_idle_context(c) for c in conns]
    finally:
        for c in conns:
            c.close()


def _idle_context(connection):
    with connection.begin():
        return tuple(connection.execute(text(
            "SELECT nile_auth.user_id(), current_setting('nile.tenant_id', true),"
            " current_setting('nile.auth_token', true)")).one())


def close():
    engine.dispose()


if __name__ == "__main__":
    story.run(sys.modules[__name__], "sqlalchemy")
