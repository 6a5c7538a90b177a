"""Settings from the environment (.env honoured), with embedded defaults.

With nothing configured the app runs on a SQLite file under instance/, runs jobs
inline and talks to a local Stripe emulator.
"""
from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
# INSTANCE_DIR moves the SQLite file, the secret key and the emulator's log (scripts/run.sh).
INSTANCE = Path(os.environ.get("INSTANCE_DIR") or ROOT / "instance").resolve()


def _bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use SECRET_KEY, else a key kept under instance/ so sessions survive restarts."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    INSTANCE.mkdir(exist_ok=True)
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        INSTANCE.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE / 'rephlo.db'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def load_config(overrides: dict | None = None) -> dict:
    load_dotenv(ROOT / ".env", override=False)
    redis_url = os.environ.get("REDIS_URL") or None
    cfg = {
        "SECRET_KEY": _secret_key(),
        "SQLALCHEMY_DATABASE_URI": _database_url(),
        # No ping on every checkout (a round trip per request): app/__init__.py pings a pooled
        # connection only when it has sat idle for DB_PING_AFTER_IDLE_SECONDS.
        # DB_POOL_SIZE: connections per web process (gevent serves many requests at once per
        # process; a request waiting for a pooled connection waits in line, not in the database).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, **(
            {"pool_size": int(os.environ["DB_POOL_SIZE"]), "max_overflow": 0} if os.environ.get("DB_POOL_SIZE") else {})},
        "DB_PING_AFTER_IDLE_SECONDS": float(os.environ.get("DB_PING_AFTER_IDLE_SECONDS", "10")),
        # PostgreSQL timeouts of request transactions (app/core/db_timeouts.py): a request waiting
        # on a row lock gives up after DB_LOCK_TIMEOUT_MS and answers 503 with Retry-After; RQ
        # workers (`flask jobs worker`) wait longer, and a job's statement may run for 10 minutes.
        "DB_LOCK_TIMEOUT_MS": int(os.environ.get("DB_LOCK_TIMEOUT_MS", "2000")),
        "DB_STATEMENT_TIMEOUT_MS": int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", "15000")),
        "DB_JOB_LOCK_TIMEOUT_MS": int(os.environ.get("DB_JOB_LOCK_TIMEOUT_MS", "30000")),
        "DB_JOB_STATEMENT_TIMEOUT_MS": int(os.environ.get("DB_JOB_STATEMENT_TIMEOUT_MS", "600000")),
        "REDIS_URL": redis_url,
        # Jobs run inline unless a Redis is configured (or forced off for tests).
        "JOBS_INLINE": _bool("JOBS_INLINE", default=redis_url is None),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis away: Flask-Limiter's limits (sign-in and the rest) count in memory meanwhile.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "STRIPE_API_KEY": os.environ.get("STRIPE_API_KEY", "sk_test_local"),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        # Test accounts and sandbox traffic never use a live key: this one, else STRIPE_API_KEY if it is a test key.
        "STRIPE_TEST_API_KEY": os.environ.get("STRIPE_TEST_API_KEY", ""),
        "STRIPE_TIMEOUT": float(os.environ.get("STRIPE_TIMEOUT", "15")),
        "STRIPE_MAX_RETRIES": int(os.environ.get("STRIPE_MAX_RETRIES", "1")),
        # Refunds above this amount (USD) wait for a second admin's approval.
        "REFUND_APPROVAL_THRESHOLD": os.environ.get("REFUND_APPROVAL_THRESHOLD", "100.00"),
        # Coupon fraud detector overrides, e.g. {"velocity_abuse": {"max_attempts": 8}} (app/coupons/fraud.py).
        "COUPON_FRAUD": json.loads(os.environ.get("COUPON_FRAUD") or "{}"),
        # Dunning: retries this many days after the first failure, then a grace period.
        "DUNNING_RETRY_DAYS": os.environ.get("DUNNING_RETRY_DAYS", "1,4,7"),
        "DUNNING_GRACE_DAYS": int(os.environ.get("DUNNING_GRACE_DAYS", "7")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Secure unless plain HTTP on this machine is said explicitly (scripts/run.sh, the browser tests).
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", True),
        # Proxies in front of the app (nginx: 1) whose X-Forwarded-For/-Proto are believed (ProxyFix),
        # so rate limits and audit rows see the client, not the proxy. 0: the peer is the client.
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", True),
        # "standard" (argon2-cffi's defaults); "test" (cheap hashes) is honoured only when TESTING.
        "PASSWORD_HASH_COST": os.environ.get("PASSWORD_HASH_COST", "standard"),
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "30"))),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=int(os.environ.get("SESSION_ABSOLUTE_HOURS", "12"))),
        "SUDO_WINDOW": timedelta(minutes=int(os.environ.get("SUDO_MINUTES", "10"))),
        # Failed sign-ins: per account from anywhere (a distributed guess), and per address per account
        # (one source guessing; no limit per address alone, so others' failures behind one NAT or
        # proxy never lock a correct password out of it).
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "20 per 15 minutes"),
        "LOGIN_LIMIT_PER_IP_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_IP_ACCOUNT", "5 per 15 minutes"),
        # The customer pages' sign-up, forgot and reset forms, per address (sign-in follows the two above).
        "ACCOUNT_LIMIT_PER_IP": os.environ.get("ACCOUNT_LIMIT_PER_IP", "20 per 15 minutes"),
        # The second factor (/auth/verify, /auth/sudo): wrong codes per account and per IP (429
        # past them), wrong codes in a row that lock the factor until an admin unlocks it, and
        # how long a password-only session may wait for its code (app/auth/mfa_guard.py).
        "MFA_LIMIT_PER_ACCOUNT": os.environ.get("MFA_LIMIT_PER_ACCOUNT", "5 per 15 minutes"),
        "MFA_LIMIT_PER_IP": os.environ.get("MFA_LIMIT_PER_IP", "20 per 15 minutes"),
        "MFA_LOCKOUT_FAILURES": int(os.environ.get("MFA_LOCKOUT_FAILURES", "10")),
        "MFA_PENDING_TIMEOUT": timedelta(minutes=int(os.environ.get("MFA_PENDING_MINUTES", "5"))),
        "WTF_CSRF_TIME_LIMIT": None,
        # Largest request body (bytes): a bigger one is a 413 before anything reads it. The largest
        # legitimate body, a bulk allocation of 1,000 rows with long reasons, stays under 4 MiB.
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(4 * 2**20))),
        "SMTP_HOST": os.environ.get("SMTP_HOST", ""),
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", "587")),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", True),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Rephlo <no-reply@rephlo.local>"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        # Per-key API rate limits: test traffic (sandbox/development keys, test accounts) gets less.
        "API_RATE_LIMIT_LIVE": os.environ.get("API_RATE_LIMIT_LIVE", "600 per minute"),
        "API_RATE_LIMIT_TEST": os.environ.get("API_RATE_LIMIT_TEST", "120 per minute"),
        "IDEMPOTENCY_TTL_HOURS": int(os.environ.get("IDEMPOTENCY_TTL_HOURS", "24")),
        # Licenses: device changes per license per 24 h, validation cache TTL (Redis), per-IP limit
        # of license-key API calls (API-key calls use the key's own limit).
        "LICENSE_ACTIVATION_CHANGE_LIMIT": int(os.environ.get("LICENSE_ACTIVATION_CHANGE_LIMIT", "10")),
        # Off by default: a validation's lookup is one indexed statement, and the cache's round
        # trips cost more than they save unless the same device validates again within the TTL
        # (app/licensing/cache.py says what was measured).
        "LICENSE_CACHE_SECONDS": int(os.environ.get("LICENSE_CACHE_SECONDS", "0")),
        # Price of a perpetual license bought through the API (seed 001: $299.99 for v1.0.0).
        "PERPETUAL_LICENSE_PRICE": os.environ.get("PERPETUAL_LICENSE_PRICE", "299.99"),
        "LICENSE_API_RATE_LIMIT": os.environ.get("LICENSE_API_RATE_LIMIT", "300 per minute"),
        "OAUTH_TOKEN_TTL_SECONDS": int(os.environ.get("OAUTH_TOKEN_TTL_SECONDS", "3600")),
        # Customers' tokens (authorization-code grant): short-lived access, rotating refresh.
        "CUSTOMER_ACCESS_TOKEN_TTL_SECONDS": int(os.environ.get("CUSTOMER_ACCESS_TOKEN_TTL_SECONDS", "900")),
        "CUSTOMER_REFRESH_TOKEN_TTL_DAYS": int(os.environ.get("CUSTOMER_REFRESH_TOKEN_TTL_DAYS", "30")),
        "AUTHORIZATION_CODE_TTL_SECONDS": int(os.environ.get("AUTHORIZATION_CODE_TTL_SECONDS", "300")),
        "OAUTH_TOKEN_RATE_LIMIT": os.environ.get("OAUTH_TOKEN_RATE_LIMIT", "30 per minute"),
        # Test-data cleanup: batch size (test accounts per batch for the nightly cleanup, rows
        # per batch for "delete all"; each batch is one short transaction), an optional pause
        # between batches to spare a busy database, and soft delete with a purge delay.
        # 200: bench/cleanup.py deletes as many rows/s as with 500, and its longest batch
        # transaction is about a quarter as long (0.5 s instead of 1.9 s on PostgreSQL).
        "TEST_DATA_CLEANUP_BATCH_SIZE": int(os.environ.get("TEST_DATA_CLEANUP_BATCH_SIZE", "200")),
        "TEST_DATA_CLEANUP_PAUSE_MS": int(os.environ.get("TEST_DATA_CLEANUP_PAUSE_MS", "0")),
        "TEST_DATA_SOFT_DELETE": _bool("TEST_DATA_SOFT_DELETE", False),
        "TEST_DATA_PURGE_DAYS": int(os.environ.get("TEST_DATA_PURGE_DAYS", "30")),
        "APP_VERSION": "0.1.0",
        "TESTING": False,
    }
    if overrides:
        cfg.update(overrides)
    # The embedded default (no Redis): background jobs run on a worker thread, so a request
    # answers at once and its progress bar moves, and the app process runs the periodic jobs
    # itself (app/ops/scheduler.py). Whoever sets JOBS_INLINE (tests, benches) drives jobs
    # by hand: inline in the request, no scheduler, unless JOBS_THREAD/EMBEDDED_SCHEDULER say so.
    asked_inline = "JOBS_INLINE" in os.environ or "JOBS_INLINE" in (overrides or {})
    embedded = not cfg["REDIS_URL"] and not cfg["TESTING"] and not asked_inline
    cfg.setdefault("JOBS_THREAD", _bool("JOBS_THREAD", default=embedded))
    cfg.setdefault("EMBEDDED_SCHEDULER", _bool("EMBEDDED_SCHEDULER", default=embedded))
    return cfg
