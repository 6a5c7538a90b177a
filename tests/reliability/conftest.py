"""Fault injection: a Redis of the test's own (killed and restarted by the test, without
persistence, as the deployment guide runs it), and the session's app pointed at it."""
from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.common import free_port
from tests.support.services import unavailable


class RedisServer:
    """redis-server on a free port with no persistence: a restart comes back empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except RedisConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.02)
            finally:
                probe.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is saved."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def own_redis():
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def on_own_redis(app, own_redis, monkeypatch):
    """The app's Redis (queues, rate limits, request counters) is own_redis for this test."""
    from app.api import quota

    monkeypatch.setitem(app.config, "REDIS_URL", own_redis.url)
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", own_redis.url)
    app.extensions.pop("rephlo_redis", None)
    quota._windows = quota._Windows()  # no blocks or outage remembered from another test
    with app.app_context():
        yield own_redis
    app.extensions.pop("rephlo_redis", None)
    quota._windows = quota._Windows()
