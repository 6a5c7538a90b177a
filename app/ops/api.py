"""GET /api/v1/health/redis: per-queue pending/processing/dead-letter, workers, cron runs."""
from __future__ import annotations

from flask import current_app, jsonify

from app.api.pipeline import PUBLIC, route
from app.core.redis import connection
from app.extensions import db
from app.ops import queues


@route("GET", "/health/redis", auth=PUBLIC)
def redis_health():
    periodic = queues.periodic_last_runs(db.session)
    conn = connection()
    if conn is None:
        return jsonify({"status": "ok", "redis": "not_configured",
                        "jobs": "thread" if current_app.config.get("JOBS_THREAD") else "inline",
                        "scheduler": "embedded" if current_app.config.get("EMBEDDED_SCHEDULER") else "off",
                        "cron": periodic})
    try:
        conn.ping()
        stats = queues.queue_stats(conn)
    except Exception as exc:  # the health check reports, it does not raise
        return jsonify({"status": "unhealthy", "redis": f"error: {type(exc).__name__}",
                        "reason": "Redis is unreachable: jobs cannot be queued or run.", "cron": periodic}), 503
    return jsonify({"status": "healthy", "redis": "connected", **stats,
                    "workers_alive": len(stats["workers"]), "cron": periodic})
