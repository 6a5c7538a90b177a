"""Private names of dependencies that the app relies on because no public API does the job,
each pinned with an upper bound in pyproject.toml. When an upgrade changes one, its test here
fails naming it and the module that uses it, instead of the app quietly losing what it gave
(gevent-friendly waits, the skipped limiter hook) or breaking at run time.

- psycopg (< 3.4), app/core/green.py: psycopg.waiting.wait (replaced under gevent), WAIT_*/READY_*,
  psycopg.errors._WaitTimeout; no public way to give psycopg a wait function.
- Flask-Limiter (< 4.2), app/api/__init__.py skip_browser_hooks(): Limiter._meta_limits and
  Limiter.limit_manager (whether its hooks have work on the API); its hooks are found as bound
  methods (or a partial) of the Limiter in Flask's public hook lists; 4.x has no auto_check=False
  and limiter.exempt() still runs the hooks.
- SQLAlchemy (< 2.1), app/core/pg.py: scoped_session.registry
  (.has(), .createfunc), sessionmaker.kw, Connection(engine, connection=pooled).
- limits (< 6), app/api/quota.py: the Redis fixed-window counter's key and expiry.
- Werkzeug (< 4), app/core/current.py: LocalProxy._get_current_object (documented, but named as
  private) on Flask's request, g and current_app, read at import and called per request.
- The standard library, app/core/logging.py: logging._srcfile (the logging HOWTO's optimisation).
"""
from __future__ import annotations

import inspect
import logging

import pytest
from tests.support.services import redis_or_unavailable


def relied_on(ok: bool, name: str, user: str, expected: str) -> None:
    if not ok:
        pytest.fail(f"{name} changed ({expected} expected): {user} relies on it; adapt it or keep the pin in "
                    "pyproject.toml", pytrace=False)


def _params(func) -> list[str]:
    return list(inspect.signature(func).parameters)


# psycopg ---------------------------------------------------------------------------------------

def test_psycopg_wait_names_app_core_green_replaces():
    from psycopg import OperationalError, errors, waiting

    user = "app/core/green.py"
    relied_on(callable(getattr(waiting, "wait", None)), "psycopg.waiting.wait", user, "a function")
    relied_on(_params(waiting.wait)[:4] == ["gen", "fileno", "interval", "timeout"], "psycopg.waiting.wait", user,
              "wait(gen, fileno, interval, timeout)")
    for name in ("WAIT_R", "WAIT_W", "WAIT_RW", "READY_R", "READY_W", "READY_RW"):
        relied_on(hasattr(waiting, name), f"psycopg.waiting.{name}", user, "a constant")
    timeout = getattr(errors, "_WaitTimeout", None)
    relied_on(isinstance(timeout, type) and issubclass(timeout, OperationalError), "psycopg.errors._WaitTimeout",
              user, "an OperationalError subclass")


@pytest.mark.postgres
def test_psycopg_looks_its_wait_up_at_every_wait(monkeypatch):
    """green.install() swaps the module attribute: psycopg must call waiting.wait through the
    module, with a generator asking for WAIT_* and taking READY_* (tests/core/test_green.py runs
    the gevent wait itself)."""
    import psycopg
    from psycopg import waiting

    from tests.support import dbs

    original, asked = waiting.wait, []

    def recording(gen, fileno, interval=0.0, timeout=None):
        def watched():
            try:
                wanted = next(gen)
                while True:
                    asked.append(wanted)
                    wanted = gen.send((yield wanted))
            except StopIteration as done:
                return done.value

        return original(watched(), fileno, interval=interval, timeout=timeout)

    url = dbs.PG_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        monkeypatch.setattr(waiting, "wait", recording)
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    relied_on(bool(asked), "psycopg.waiting.wait", "app/core/green.py", "called through the module by a query")
    relied_on(set(asked) <= {waiting.WAIT_R, waiting.WAIT_W, waiting.WAIT_RW}, "psycopg.waiting.WAIT_*",
              "app/core/green.py", "what a query's generator asks for")


# Flask-Limiter ---------------------------------------------------------------------------------

def test_the_browser_extensions_hooks_skip_browser_hooks_finds():
    from flask import Blueprint, Flask
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address
    from flask_login import LoginManager
    from flask_wtf.csrf import CSRFProtect

    from app.api import api_bp, skip_browser_hooks

    user = "app/api/__init__.py skip_browser_hooks()"
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "x"
    CSRFProtect(app)
    limiter = Limiter(get_remote_address, app=app, default_limits=[], storage_uri="memory://")
    login_manager = LoginManager(app)
    relied_on(isinstance(getattr(limiter, "_meta_limits", None), list), "Limiter._meta_limits", user, "a list")
    manager = getattr(limiter, "limit_manager", None)
    relied_on(manager is not None and hasattr(manager, "default_limits") and hasattr(manager, "application_limits"),
              "Limiter.limit_manager.default_limits/application_limits", user, "the limits the hook applies")
    before = {id(h) for h in app.before_request_funcs[None]}
    after = {id(h) for h in app.after_request_funcs[None]}
    teardown = {id(h) for h in app.teardown_request_funcs[None]}

    blueprint = Blueprint(api_bp.name, __name__, url_prefix="/api")
    def limited():
        return "ok"

    def posted():
        return "posted"

    def form():
        return "form"

    blueprint.get("/limited")(limiter.limit("1 per minute")(limited))
    blueprint.post("/posted")(posted)
    app.register_blueprint(blueprint)
    app.post("/form")(form)
    skip_browser_hooks(app, limiter=limiter, login_manager=login_manager)
    wrapped = [(kind, id(h.__wrapped__)) for kind, hooks in (("before", app.before_request_funcs[None]),
                                                             ("after", app.after_request_funcs[None]),
                                                             ("teardown", app.teardown_request_funcs[None]))
               for h in hooks if getattr(h, "skips_api", False)]
    # every hook the three extensions registered is found (2 before, 2 after, 1 teardown)
    relied_on(len(wrapped) == 5 and {i for k, i in wrapped if k == "before"} == before
              and {i for k, i in wrapped if k == "after"} <= after and {i for k, i in wrapped if k == "teardown"} == teardown,
              "the request hooks of Flask-WTF, Flask-Limiter and Flask-Login", user,
              "CSRF protect and the limiter's check before; the limiter's headers and the remember cookie after; "
              "the limiter's context release at teardown")
    client = app.test_client()
    assert [client.get("/api/limited").status_code for _ in range(2)] == [200, 429]  # the decorator still limits
    assert client.post("/api/posted").status_code == 200  # no CSRF check on the API
    assert client.post("/form").status_code == 400  # still one on the pages


# SQLAlchemy ------------------------------------------------------------------------------------

def test_sqlalchemy_scoped_session_parts_app_core_pg_uses():
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import scoped_session, sessionmaker
    from sqlalchemy.pool import QueuePool

    user = "app/core/pg.py"
    engine = create_engine("sqlite://", poolclass=QueuePool)  # (a pool that counts its checkouts)
    scoped = scoped_session(sessionmaker(bind=engine, expire_on_commit=False), scopefunc=lambda: "one scope")
    kw = getattr(scoped.session_factory, "kw", {})
    relied_on(kw.get("bind") is engine and kw.get("expire_on_commit") is False,
              "sessionmaker.kw", user, "the keywords the factory was made with")
    registry = getattr(scoped, "registry", None)
    relied_on(registry is not None and callable(getattr(registry, "has", None)), "scoped_session.registry.has",
              user, "a method")
    relied_on(callable(getattr(registry, "createfunc", None)), "scoped_session.registry.createfunc", user,
              "the factory the registry calls")
    made, make = [], registry.createfunc

    def create():
        made.append(make())
        return made[-1]

    registry.createfunc = create
    relied_on(not registry.has(), "scoped_session.registry.has", user, "False before a session is made")
    session = scoped()
    relied_on(made == [session] and registry.has() and registry() is session, "scoped_session.registry.createfunc",
              user, "called by scoped_session() to make the scope's session")
    scoped.remove()

    relied_on("connection" in _params(Connection.__init__), "sqlalchemy.engine.Connection(engine, connection=)",
              user, "a Connection around a pooled DBAPI connection")
    pooled = engine.raw_connection()
    conn = Connection(engine, connection=pooled)
    assert conn.execute(text("SELECT 7")).scalar_one() == 7
    relied_on(engine.pool.checkedout() == 1, "sqlalchemy.engine.Connection(engine, connection=)", user,
              "no second pooled connection")
    conn.close()
    engine.dispose()


# limits (Flask-Limiter's storage) --------------------------------------------------------------

@pytest.mark.redis
def test_limits_redis_fixed_window_key_is_the_one_app_api_quota_counts():
    import time

    from limits import parse
    from limits.storage import RedisStorage, storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    from tests.support.workers import TEST_REDIS_URL

    redis = redis_or_unavailable(TEST_REDIS_URL)
    item, name = parse("5 per minute"), f"internals:{time.time_ns()}"
    key = f"{getattr(RedisStorage, 'PREFIX', None)}:{item.key_for('api', name)}"
    try:
        FixedWindowRateLimiter(storage_from_string(TEST_REDIS_URL)).hit(item, "api", name)
        relied_on(redis.get(key) == b"1" and 0 < redis.ttl(key) <= 60, "limits' Redis fixed-window key "
                  "(RedisStorage.PREFIX:item.key_for(...))", "app/api/quota.py", "a counter with the window's expiry")
    finally:
        redis.delete(key)
        redis.close()


# Werkzeug (Flask's context proxies) -----------------------------------------------------------

def test_werkzeug_proxies_give_the_objects_app_core_current_takes(app):
    """current.request/g/app are the proxies' _get_current_object, taken once at import: each
    call must look the context up afresh (an inner request context gives its own request)."""
    from flask import current_app, g, request

    from app.core import current

    user = "app/core/current.py"
    for proxy in (request, g, current_app):
        relied_on(callable(getattr(proxy, "_get_current_object", None)), "LocalProxy._get_current_object", user,
                  "a method of Flask's proxies")
    with app.test_request_context("/api/v1/outer"):
        outer = current.request()
        with app.test_request_context("/api/v1/inner"):
            relied_on(current.request().path == "/api/v1/inner" and current.request() is request._get_current_object(),
                      "LocalProxy._get_current_object", user, "the request of the innermost context")
            current.g().marker = "inner"
            relied_on(g.marker == "inner", "LocalProxy._get_current_object", user, "the g the proxy reads")
        relied_on(current.request() is outer and current.app() is app, "LocalProxy._get_current_object", user,
                  "the outer request again once the inner context ends")
    with pytest.raises(RuntimeError):  # outside a request, as the proxies themselves
        current.request()


# the standard library --------------------------------------------------------------------------

def test_logging_srcfile_app_core_logging_clears():
    relied_on(hasattr(logging, "_srcfile"), "logging._srcfile", "app/core/logging.py",
              "the documented switch that skips caller lookups")
