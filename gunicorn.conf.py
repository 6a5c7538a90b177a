"""gunicorn settings of the deployment (docs/deployment.md): `gunicorn -c gunicorn.conf.py wsgi:app`.

Flags on the command line override these (the benchmark's `-k gthread`, a test's port).
"""
import gc
import os
import sys

worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # one per core
worker_connections = 1000
keepalive = 30
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
# One listening socket shared by the workers (no reuse_port): a worker accepts only once it has
# loaded the app, so a worker that restarts (killed, OOM, max_requests) takes no connection it
# cannot serve. With a socket per worker (SO_REUSEPORT) the kernel gave the restarting worker's
# socket its share of new connections before the app was loaded: they waited seconds
# (bench/worker_kill.py; docs/deployment.md has the figures of both).
reuse_port = False
# No access log of gunicorn's own: the app writes one line per request (app/core/logging.py).
accesslog = None


def post_worker_init(worker) -> None:
    """Move everything the app allocated at start-up (modules, models, compiled statements,
    templates: most of a worker's objects) out of the garbage collector's reach. Each full
    collection then walks only what was allocated since: measured under the metering API's
    load, a full collection stalled every request in flight for ~155 ms before, 10-40 ms after."""
    gc.collect()
    gc.freeze()
    if worker is not None:  # the app is loaded; the worker accepts from here on (bench/worker_kill.py)
        # (Not worker.log: the app's logging setup turns off logging.logProcesses, which
        # gunicorn's own "[%(process)d]" format then fails on.)
        print(f"[{os.getpid()}] worker ready to serve", file=sys.stderr, flush=True)
