"""One app per session on a freshly migrated database; one rolled-back transaction per test.

The database is PostgreSQL when reachable (always under CI=true, where it must be), or
SQLite with TEST_DB=sqlite. Tests marked `postgres` need PostgreSQL features and are
skipped on SQLite runs only.
"""
from __future__ import annotations

import functools
import os
import uuid
from datetime import datetime, timezone

import pytest


from tests.support import dbs

pytest_plugins = ["tests.support.smtp"]  # smtp_server, unreachable_smtp

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    if dbs.backend() == "sqlite":
        skip = pytest.mark.skip(reason="needs PostgreSQL (SQLite run)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url() -> str:
    name = f"rephlo_test_{os.getpid()}"
    url = dbs.prepare_database(name)
    yield url
    dbs.drop_database(name)


@pytest.fixture(scope="session")
def app(database_url):
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.rbac.service import ensure_catalogue

    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JOBS_INLINE": True,
        "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WTF_CSRF_ENABLED": False,
        "SERVER_NAME": "admin.test",
        "SECRET_KEY": "test-secret-key",
        "PASSWORD_HASH_COST": "test",  # cheap argon2id for the suite's users (app/auth/service.py)
    })
    with app.app_context():
        upgrade()
        ensure_catalogue(db.session)
        db.session.commit()
    # Requests in tests reuse the test's app context (Flask pushes none when one is active), so
    # `g` (Flask-Login's current user, cached permissions) would leak from one client's request
    # into the next. Start every request with an empty `g`, as a server's fresh context does.
    app.before_request_funcs.setdefault(None, []).insert(0, _fresh_request_globals)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _fresh_request_globals():
    from flask import g

    g.__dict__.clear()


@pytest.fixture(autouse=True)
def _transaction(request, app):
    """Each test runs inside one outer transaction that is rolled back at the end."""
    if "real_db" in request.fixturenames:
        yield
        return
    from app.core.pg import BoundSession  # one connection for every statement of the test
    from app.extensions import db, limiter
    from tests.support.sessions import app_scoped_session

    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = app_scoped_session(db, bind=connection, join_transaction_mode="create_savepoint",
                                        class_=BoundSession)
        limiter.reset()
        try:
            yield
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def real_db(app):
    """Real commits (for concurrency tests); every table is emptied afterwards."""
    from app.extensions import db
    from app.rbac.service import ensure_catalogue

    with app.app_context():
        yield db
        db.session.remove()
        dbs.truncate_all(db.engine, keep={"permissions", "roles", "role_permissions", "alembic_version"})
        ensure_catalogue(db.session)
        db.session.commit()


@pytest.fixture
def session(app):
    from app.extensions import db

    with app.test_request_context():
        yield db.session


@pytest.fixture
def frozen_clock():
    from app.core import clock

    clock.freeze(datetime(2025, 11, 9, 12, 0, tzinfo=timezone.utc))
    yield clock
    clock.reset()


@functools.lru_cache(maxsize=None)
def _cached_hash(password: str) -> str:
    """argon2id costs ~0.1-0.5 s a hash on a busy machine: hash each test password once per run."""
    from app.auth.service import hash_password

    return hash_password(password)


@pytest.fixture
def make_user(app):
    from app.extensions import db
    from app.rbac.models import Role, RoleAssignment
    from app.users.models import User

    def make(email: str | None = None, *, roles: tuple[str, ...] = (), staff: bool | None = None,
             password: str = "CorrectHorse9Battery", test: bool = False, totp: bool | None = None, **fields):
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        staff = bool(roles) if staff is None else staff
        user = User(email=email, password_hash=_cached_hash(password), is_staff=staff,
                    account_type="test" if test else "standard", first_name=fields.pop("first_name", "Test"),
                    last_name=fields.pop("last_name", "Person"), **fields)
        if totp if totp is not None else staff:
            import pyotp

            user.totp_secret, user.totp_enabled = pyotp.random_base32(), True
        db.session.add(user)
        db.session.flush()
        for name in roles:
            role = db.session.query(Role).filter_by(name=name).one()
            db.session.add(RoleAssignment(user_id=user.id, role_id=role.id, reason="test fixture", is_test=test))
        # Committed (a savepoint release inside the test's outer transaction), so that a request's
        # rollback on a DomainError cannot take the fixture data with it.
        db.session.commit()
        return user

    return make


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def login_as(app, make_user):
    """A test client signed in (password + MFA done) as a new staff user with the given roles."""
    from app.auth.guards import SESSION_MFA, SESSION_SEEN, SESSION_STARTED
    from app.core import clock

    def login(*roles: str, user=None, client=None):
        from app.extensions import db

        user = user or make_user(roles=roles)
        # Committed (to the test's savepoint, still rolled back at the end) so that a view's
        # rollback on a form error cannot take the signed-in user with it.
        db.session.commit()
        client = client or app.test_client()
        now = clock.now().timestamp()
        with client.session_transaction() as sess:
            sess["_user_id"] = user.get_id()
            sess["_fresh"] = True
            sess[SESSION_STARTED] = sess[SESSION_SEEN] = now
            sess[SESSION_MFA] = True
        client.user = user
        return client

    return login


@pytest.fixture
def sudo(app):
    """Put a signed-in client into sudo mode."""
    from app.auth.guards import SESSION_SUDO
    from app.core import clock

    def grant(client):
        with client.session_transaction() as sess:
            sess[SESSION_SUDO] = clock.now().timestamp() + 600
        return client

    return grant


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true nothing that needs PostgreSQL, Redis or Chromium may be skipped."""
    if not IN_CI or dbs.backend() != "postgresql":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        names = ", ".join(getattr(r, "nodeid", "?") for r in skipped[:10])
        print(f"\nCI=true: {len(skipped)} test(s) were skipped, which CI does not allow: {names}")
        session.exitstatus = 1


@pytest.fixture
def make_api_key(app, make_user):
    """An API key for `user` (a new production customer by default): returns .key, .secret, .headers."""
    from types import SimpleNamespace

    from app.extensions import db
    from app.api.keys import create_api_key

    def make(user=None, key_type: str = "sandbox", *, scopes=None, expires_at=None, name: str = "test key"):
        user = user or make_user()
        key, secret = create_api_key(db.session, None, owner=user, name=name, key_type=key_type, scopes=scopes,
                                     expires_at=expires_at)
        # Committed (to the test's savepoint) with the data made before it, as make_user does: a
        # request refused with a rollback must not take the fixture data with it.
        db.session.commit()
        return SimpleNamespace(key=key, secret=secret, user=user, headers={"Authorization": f"Bearer {secret}"})

    return make
