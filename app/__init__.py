"""Application factory: config, extensions, blueprints, CLI, error handlers."""
from __future__ import annotations

from flask import Flask

from app.config import INSTANCE, ROOT, load_config
from app.core.flask_app import RephloFlask


def _sqlite_transactions(engine) -> None:
    """SQLite that holds concurrent writers (the embedded default serves threads at once).

    pysqlite defers BEGIN and breaks SAVEPOINT, so SQLAlchemy issues BEGIN itself (the documented
    recipe), which also keeps nested transactions (idempotency, tests' rollback) working. The
    BEGIN is IMMEDIATE: a transaction takes the write lock up front, so a second writer waits
    (busy_timeout) instead of failing with "database is locked" when a deferred reader tries
    to upgrade. WAL lets lone reads (AUTOCOMMIT connections) run beside the writer.
    PostgreSQL is untouched."""
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; the WAL default
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # a lone read outside any transaction (licensing/validation.py)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# How long a SQLite writer waits for the write lock before the request fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _ping_idle_connections(engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling without a round trip per request: pool_pre_ping pings on
    every checkout; this pings only a connection that sat idle in the pool longer than
    idle_seconds (where a restarted server or a dropped link hides). A dead one is replaced
    before use (DisconnectionError from a checkout handler makes the pool take a fresh one);
    a server lost mid-use fails that request and SQLAlchemy invalidates the pool."""
    if engine.dialect.name == "sqlite":
        return
    import time

    from sqlalchemy import event, exc

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy):
        since = record.info.pop("idle_since", None)
        if since is not None and time.monotonic() - since > idle_seconds:
            try:
                alive = engine.dialect.do_ping(dbapi_connection)
            except Exception:
                alive = False
            if not alive:
                raise exc.DisconnectionError("connection lost while idle in the pool")


def create_app(config: dict | None = None) -> Flask:
    app = RephloFlask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"),
                instance_path=str(INSTANCE))
    app.config.update(load_config(config))
    # The packages are imported here, not at the top: `import app.<anything>` runs this module
    # first, and that must not load every domain (nor build an app).
    from app.core import bounds

    bounds.init_app(app)  # before any blueprint: its <int:...> rules use the bounded converter

    from app import models  # noqa: F401  (every table on the metadata, for Alembic)
    from app.core import world_guard  # noqa: F401  (test mode never changes a production row)
    from app.core import logging as app_logging
    from app.core import db_timeouts, green, outage, security, web
    from app.core.sessions import BrowserSessionInterface
    from app.extensions import csrf, db, htmx, limiter, login_manager, migrate

    app_logging.configure(app)
    green.install()
    app.session_interface = BrowserSessionInterface()
    db.init_app(app)
    with app.app_context():
        _sqlite_transactions(db.engine)
        _ping_idle_connections(db.engine, app.config["DB_PING_AFTER_IDLE_SECONDS"])
        db_timeouts.install(app, db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    security.init_app(app)
    web.init_app(app)
    outage.init_app(app)
    from app import ports

    ports.plug()

    from app.api import load_routes, skip_browser_hooks
    from app.auth.views import bp as auth_bp
    from app.rbac.views import bp as rbac_bp
    from app.customers.user_views import bp as users_bp
    from app.analytics.views import bp as analytics_bp
    from app.auth import shell
    from app.notifications.views import bp as notifications_bp
    from app.ops.views import bp as ops_bp
    from app.api.key_views import bp as api_keys_bp
    from app.api.client_views import bp as oauth_clients_bp
    from app.sandbox.views import bp as testdata_bp
    from app.sandbox.overview_views import bp as testdata_overview_bp
    from app.licensing.views import bp as licensing_bp
    from app.coupons.views import bp as coupons_bp
    from app.coupons import redemption_list_views  # noqa: F401  (the redemptions list, on the coupons blueprint)
    from app.coupons.campaign_views import bp as campaigns_bp
    from app.coupons.fraud_views import bp as coupon_fraud_bp
    from app.billing.views import bp as billing_bp
    from app.billing.views_admin import bp as billing_admin_bp
    from app.billing import views_lists  # noqa: F401  (invoice and payment lists, on the billing_admin blueprint)
    from app.billing.webhook_views import bp as billing_webhooks_bp
    from app.credits.views import bp as credits_bp
    from app.credits.views_pricing import bp as credits_pricing_bp
    from app.accounts import home  # noqa: F401  (the customer's page, on the accounts blueprint)
    from app.accounts import oauth_server
    from app.accounts.oauth_views import bp as oauth_bp
    from app.accounts.staff_views import bp as customers_admin_bp
    from app.accounts.views import bp as accounts_bp
    from app.customers.views import bp as customers_bp
    from app.customers.search_views import bp as search_bp
    from app.customers.action_views import bp as customer_actions_bp
    from app.approvals.views import bp as approvals_bp
    from app.rbac.role_edit_views import bp as rbac_roles_bp
    from app.analytics import export_views  # noqa: F401  (the dashboard's CSV export, on the analytics blueprint)

    app.register_blueprint(auth_bp)
    app.register_blueprint(analytics_bp)
    shell.init_app(app)
    app.register_blueprint(users_bp)
    app.register_blueprint(rbac_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(testdata_bp)
    app.register_blueprint(api_keys_bp)
    app.register_blueprint(oauth_clients_bp)
    app.register_blueprint(testdata_overview_bp)
    app.register_blueprint(licensing_bp)
    app.register_blueprint(coupons_bp)
    app.register_blueprint(campaigns_bp)
    app.register_blueprint(coupon_fraud_bp)
    app.register_blueprint(billing_bp)
    app.register_blueprint(billing_admin_bp)
    app.register_blueprint(billing_webhooks_bp)
    csrf.exempt(billing_webhooks_bp)
    app.register_blueprint(credits_bp)
    app.register_blueprint(credits_pricing_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(oauth_bp)
    app.register_blueprint(customers_admin_bp)
    oauth_server.init_app(app)
    app.register_blueprint(customers_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(customer_actions_bp)
    app.register_blueprint(approvals_bp)
    app.register_blueprint(rbac_roles_bp)
    api_bp = load_routes()
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)
    skip_browser_hooks(app, limiter=limiter, login_manager=login_manager)
    security.trust_proxies(app)  # outermost: everything inside sees the client's address

    from app.cli import register_cli
    from app.ops import scheduler

    register_cli(app)
    scheduler.init_app(app)
    return app
