"""The deployment's gunicorn settings (gunicorn.conf.py), as gunicorn reads them."""
from __future__ import annotations

import gc
import runpy
from pathlib import Path

from gunicorn.config import Config

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_gunicorn_reads_the_deployments_settings():
    cfg = Config()
    for name, value in runpy.run_path(str(CONF)).items():
        if name in cfg.settings:
            cfg.set(name, value)
    assert cfg.worker_class_str == "gevent" and cfg.worker_connections == 1000 and cfg.keepalive == 30
    # One shared listening socket: a restarting worker accepts only once it can serve
    # (tests/reliability/test_worker_restart.py).
    assert not cfg.reuse_port and cfg.accesslog is None


def test_a_worker_freezes_what_the_app_allocated_at_start_up():
    hook = runpy.run_path(str(CONF))["post_worker_init"]
    try:
        hook(worker=None)
        assert gc.get_freeze_count() > 10_000  # the test process's modules and objects
    finally:
        gc.unfreeze()
