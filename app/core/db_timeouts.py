"""PostgreSQL lock and statement timeouts, so one locked row cannot stall the service.

Without them a request waiting on a row lock (a balance held by a long transaction) waits for
as long as the holder keeps it, holding its pooled connection; the requests behind it wait for
connections, and every customer's throughput falls to zero. With `lock_timeout` the waiter
gives up after DB_LOCK_TIMEOUT_MS and answers 503 with Retry-After (app/core/outage.py);
`statement_timeout` bounds a runaway query the same way.

They are startup options of each new connection (`-c lock_timeout=...`), so they cost no round
trip. Web processes use the request values; RQ workers (`flask jobs worker`, where queued and
periodic jobs run) switch to the longer job values before they work, and migrations set their
own for their transaction (migrations/env.py). A job run inline (no Redis) or by hand
(`flask jobs run`) keeps the process's request values: raise them in its environment if needed."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from app.extensions import db

PROFILE_KEY = "DB_TIMEOUTS_FOR"  # "requests" (default) or "jobs"


def options(cfg, profile: str) -> str:
    prefix = "DB_JOB_" if profile == "jobs" else "DB_"
    return (f"-c lock_timeout={int(cfg[prefix + 'LOCK_TIMEOUT_MS'])} "
            f"-c statement_timeout={int(cfg[prefix + 'STATEMENT_TIMEOUT_MS'])}")


def install(app: Flask, engine) -> None:
    """Give every new PostgreSQL connection of `engine` the timeouts of the process's profile."""
    if engine.dialect.name != "postgresql":
        return
    cfg = app.config

    @event.listens_for(engine, "do_connect")
    def _with_timeouts(dialect, conn_rec, cargs, cparams):
        mine = options(cfg, cfg.get(PROFILE_KEY, "requests"))
        cparams["options"] = f"{cparams['options']} {mine}" if cparams.get("options") else mine


def use_job_timeouts(app: Flask) -> None:
    """From now on this process connects with the job timeouts (connections made before are
    closed: they carry the request values)."""
    app.config[PROFILE_KEY] = "jobs"
    with app.app_context():
        db.engine.dispose()
