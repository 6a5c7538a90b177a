"""The reference of bench/vs_bare.py: a bare Flask + psycopg endpoint per route, running the
statements the real route runs (recorded from it by bench/sql_capture.py) and nothing else: no
validation, auth rules, rate limit, idempotency, middleware, logging or response model.

    BARE_RECIPES=bench/results/bare_recipes.json BARE_DB_URL=postgresql://... \\
        gunicorn -c gunicorn.conf.py bench.bare_app:app

It is served by the same gunicorn.conf.py as the app. Connections come from a small LIFO pool
per worker (DB_POOL_SIZE, as the app's); under gevent psycopg waits the way the app makes it
wait (app/core/green.py) when that module is there, so the two differ by the app's own work.
A request's values come from where the app takes them: the bearer secret (hashed with SHA-256
as the app stores keys) and the JSON body's fields.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from datetime import UTC, datetime, timedelta

import psycopg
from flask import Flask, Response, request

app = Flask(__name__)
DB_URL = os.environ.get("BARE_DB_URL", "postgresql://postgres@127.0.0.1:5432/rephlo_bench_bare")
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))

try:  # the app's gevent wait for psycopg, if present (the same I/O wait on both sides)
    from app.core.green import install as _install_green_wait

    GREEN_WAIT = _install_green_wait()
except ImportError:
    GREEN_WAIT = False


class Pool:
    """LIFO pool of psycopg connections, opened on first need (after gunicorn forks)."""

    def __init__(self, size: int):
        self.idle: queue.LifoQueue = queue.LifoQueue()
        self.size, self.opened, self.lock = size, 0, threading.Lock()

    def get(self) -> psycopg.Connection:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            with self.lock:
                opening = self.opened < self.size
                self.opened += opening
            return psycopg.connect(DB_URL) if opening else self.idle.get()

    def put(self, conn: psycopg.Connection) -> None:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        self.idle.put(conn)


POOL = Pool(POOL_SIZE)


def _value(spec: dict, inputs: dict, rows: list, now: datetime):
    if "const" in spec:
        return spec["const"]
    if "input" in spec:
        return inputs[spec["input"]]
    if "row" in spec:
        return rows[spec["row"]][spec["col"]]
    if "now_plus_s" in spec:
        return now + timedelta(seconds=spec["now_plus_s"])
    if spec.get("date") == "today":
        return now.date()
    if spec.get("date") == "month":
        return now.date().replace(day=1)
    raise ValueError(spec)


def _endpoint(by_bearer: dict[bool, list[dict]]):
    """A route's view: the steps recorded with a bearer key or without, as the request comes."""
    def view():
        inputs = {}
        secret = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if secret:
            inputs["secret"], inputs["key_hash"] = secret, hashlib.sha256(secret.encode()).hexdigest()
        steps = by_bearer[bool(secret)]
        if request.method == "POST":
            for name, value in json.loads(request.get_data() or b"{}").items():
                inputs[f"body.{name}"] = value
        now = datetime.now(UTC)
        rows, answer, columns = [], None, None
        conn = POOL.get()
        try:
            for step in steps:
                if "end" in step:
                    conn.commit() if step["end"] == "commit" else conn.rollback()
                    continue
                if conn.autocommit != step["autocommit"]:  # as the app ran it (set only between transactions)
                    conn.autocommit = step["autocommit"]
                cur = conn.execute(step["sql"], {k: _value(s, inputs, rows, now) for k, s in step["params"].items()})
                if step["row"] is not None:
                    rows.append(cur.fetchone())
                    if rows[-1] is None:
                        return Response('{"error":"not_found"}', status=404, mimetype="application/json")
                    answer, columns = rows[-1], [c.name for c in cur.description]
        finally:
            POOL.put(conn)
        return Response(json.dumps(dict(zip(columns, answer)), default=str), mimetype="application/json")

    return view


def _load() -> None:
    path = os.environ.get("BARE_RECIPES")
    if not path:
        return
    routes: dict[tuple[str, str], dict[bool, list[dict]]] = {}
    with open(path) as file:
        recorded = json.load(file)
    for route in recorded:
        routes.setdefault((route["method"], route["path"]), {})[route["bearer"]] = route["steps"]
    for n, ((method, rule), by_bearer) in enumerate(routes.items()):
        app.add_url_rule(rule, f"bare_{n}", _endpoint(by_bearer), methods=[method])


@app.get("/api/v1/health")
def health():
    return {"status": "ok"}


_load()
