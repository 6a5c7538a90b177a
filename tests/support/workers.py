"""A real RQ worker in a subprocess (started through the Flask CLI), for job-path tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def worker_env(database_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url.replace("+psycopg", ""), "REDIS_URL": TEST_REDIS_URL,
            "FLASK_APP": "wsgi", "SECRET_KEY": "test-secret-key", "JOBS_INLINE": "0"}


def start_worker(database_url: str, burst: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-m", "flask", "jobs", "worker"] + (["--burst"] if burst else [])
    return subprocess.Popen(args, cwd=ROOT, env=worker_env(database_url),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
