"""gunicorn settings of the deployment (docs/deployment.md): `gunicorn -c gunicorn.conf.py wsgi:app`.

Flags on the command line override these (the benchmark's `-k gthread`, a test's port).
"""
import gc
import os

worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # one per core
worker_connections = 1000
keepalive = 30
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
# A listening socket per worker (SO_REUSEPORT): the kernel spreads new connections evenly. On one
# shared socket a gevent worker accepts up to 100 at a wake-up, and client apps' keep-alive
# connections then stay unevenly spread: measured at 64 clients, one worker answered in 112 ms
# (p50) while the other idled at 17 ms.
reuse_port = True
# No access log of gunicorn's own: the app writes one line per request (app/core/logging.py).
accesslog = None


def post_worker_init(worker) -> None:
    """Move everything the app allocated at start-up (modules, models, compiled statements,
    templates: most of a worker's objects) out of the garbage collector's reach. Each full
    collection then walks only what was allocated since: measured under the metering API's
    load, a full collection stalled every request in flight for ~155 ms before, 10-40 ms after."""
    gc.collect()
    gc.freeze()
