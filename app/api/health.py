"""GET /api/v1/health: database and Redis reachability, 200 when all is well, else 503."""
from __future__ import annotations

from flask import current_app, jsonify
from sqlalchemy import text

from app.api.pipeline import PUBLIC, route
from app.core.redis import connection
from app.extensions import db


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # reported, not raised: this is the health check
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def check_redis() -> str:
    try:
        conn = connection()
        if conn is None:
            return "not_configured"
        conn.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@route("GET", "/health", auth=PUBLIC)
def health():
    database, redis = check_database(), check_redis()
    healthy = database == "ok" and redis in ("ok", "not_configured")
    body = {"status": "ok" if healthy else "degraded", "database": database, "redis": redis,
            "version": current_app.config["APP_VERSION"]}
    return jsonify(body), 200 if healthy else 503
