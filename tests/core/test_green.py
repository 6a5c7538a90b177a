"""psycopg's waits under gevent (app/core/green.py), in a process gevent has patched, as a
gunicorn -k gevent worker is: other greenlets run while a query waits, timeouts end a wait,
a query larger than the socket's buffer is sent whole, and nothing changes without gevent."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import dbs

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
from gevent import monkey; monkey.patch_all()
import json, sys, time
import gevent, psycopg
from psycopg import waiting
from app.core import green

installed = green.install()
url = sys.argv[1]
ticks, done = [], {}

def slow():
    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_sleep(0.4)")
    done["slow"] = len(ticks)

def ticker():
    while "slow" not in done:
        ticks.append(time.monotonic())
        gevent.sleep(0.02)

gevent.joinall([gevent.spawn(slow), gevent.spawn(ticker)], raise_error=True)
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("LISTEN green_test")
    started = time.monotonic()
    quiet = list(conn.notifies(timeout=0.2, stop_after=1))
    waited = time.monotonic() - started
    big = "x" * 8_000_000
    length = conn.execute("SELECT length(%s)", [big]).fetchone()[0]
print(json.dumps({"installed": installed, "wait": waiting.wait.__name__, "ticks_while_waiting": done["slow"],
                  "notifies": len(quiet), "waited": waited, "length": length}))
"""


def _run(script: str) -> dict:
    url = dbs.PG_ADMIN_URL.replace("+psycopg", "")
    out = subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.postgres
def test_queries_yield_to_other_greenlets_time_out_and_send_large_queries():
    result = _run(SCRIPT)
    assert result["installed"] and result["wait"] == "wait_gevent"
    assert result["ticks_while_waiting"] >= 5  # the ticker ran while pg_sleep(0.4) was waited on
    assert result["notifies"] == 0 and result["waited"] >= 0.2  # the timeout ended the wait, no sooner
    assert result["length"] == 8_000_000


NOT_YIELDING = r"""
from gevent import monkey; monkey.patch_all()
import json, sys, time
import gevent, psycopg
from app.core import green

green.install()
url = sys.argv[1]
ticks = {"yielding": 0, "not_yielding": 0}
state = {"mode": None, "done": False}

def query():
    with psycopg.connect(url) as conn:
        for mode in ("yielding", "not_yielding"):
            state["mode"] = mode
            with green.not_yielding() if mode == "not_yielding" else open("/dev/null"):
                conn.execute("SELECT pg_sleep(0.3)")
    state["done"] = True

def ticker():
    while not state["done"]:
        if state["mode"]:
            ticks[state["mode"]] += 1
        gevent.sleep(0.02)

gevent.joinall([gevent.spawn(query), gevent.spawn(ticker)], raise_error=True)
print(json.dumps(ticks))
"""


@pytest.mark.postgres
def test_not_yielding_blocks_the_worker_for_the_round_trip():
    """A hot lock's holder (pg.hot_lock_taken) commits inside not_yielding(): no other greenlet
    runs until the server answers, so the lock is not held while the worker serves others."""
    ticks = _run(NOT_YIELDING)
    assert ticks["yielding"] >= 5  # the ticker ran while the first pg_sleep(0.3) was waited on
    assert ticks["not_yielding"] <= 1  # and not during the second (at most the tick it was in)


def test_without_gevent_psycopg_keeps_its_own_wait():
    out = subprocess.run([sys.executable, "-c", "from app.core import green; from psycopg import waiting; "
                          "print(green.install(), waiting.wait.__name__)"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "wait_c"]
