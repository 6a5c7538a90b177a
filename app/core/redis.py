"""Redis connection and RQ queues, only when REDIS_URL is configured."""
from __future__ import annotations

from redis import Redis
from rq import Queue

from app.core import current

QUEUES = ("high", "default", "low")


def connection() -> Redis | None:
    flask_app = current.app()  # asked on every API request: no proxy lookups (app/core/current.py)
    url = flask_app.config.get("REDIS_URL")
    if not url:
        return None
    conn = flask_app.extensions.get("rephlo_redis")
    if conn is None:
        # A connect timeout, so an unreachable Redis fails a request in seconds, not the OS's minutes
        # (no read timeout: RQ workers block on the queues for longer).
        conn = flask_app.extensions["rephlo_redis"] = Redis.from_url(url, socket_connect_timeout=2)
    return conn


def rq_queue(name: str = "default") -> Queue:
    conn = connection()
    if conn is None:
        raise RuntimeError("REDIS_URL is not configured")
    return Queue(name, connection=conn)
