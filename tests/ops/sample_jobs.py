"""Job functions used by the queue tests (run by a real worker subprocess)."""
from __future__ import annotations

import os
import time

from flask import current_app
from redis import Redis


def boom(job):
    raise RuntimeError("boom for the jobs screen")


def slow_once(job, key: str):
    """Sleeps on its first run (to be killed), returns at once on the next."""
    redis = Redis.from_url(current_app.config["REDIS_URL"])
    runs = redis.incr(key)
    redis.set(f"{key}:pid", os.getpid())
    if runs == 1:
        time.sleep(60)
    return {"runs": runs}


def tick_tock(job):
    """A periodic job of the scheduler tests: reports progress and returns."""
    job.progress(1, 2, "half way")
    return {"ticked": True}


def where_am_i(job):
    """Names the thread it ran on (the worker thread test)."""
    import threading

    return {"thread": threading.current_thread().name}
