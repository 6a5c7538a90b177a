"""Item 16 of issue 15: a gunicorn worker killed with SIGKILL must not take new connections
before its replacement can serve them. The deployment's gunicorn.conf.py shares one listening
socket (no reuse_port), so only a worker that has loaded the app accepts: measured with
bench/worker_kill.py (same procedure), 0 of 60 connections waited more than a second after a
kill, against 31 of 60 with reuse_port."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.worker_kill import kill_one_and_connect, start, wait_ready

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_new_connections_are_served_at_once_while_a_killed_worker_restarts(app, database_url):
    (ROOT / "test-output").mkdir(exist_ok=True)
    log = ROOT / "test-output" / f"worker-kill-{os.getpid()}.log"
    proc, base = start(database_url, log, reuse_port=False)  # app fixture: the database is migrated
    try:
        times = kill_one_and_connect(proc, base, connections=20, spread=2.0)
        wait_ready(proc, log, 3)  # the replacement loaded the app meanwhile (a third "ready")
    finally:
        proc.terminate()
        proc.wait(20)
    slow = [round(t, 2) for t in times if t > 1]
    assert len(slow) <= 1, f"{len(slow)} of 20 connections waited more than 1 s: {slow}"
