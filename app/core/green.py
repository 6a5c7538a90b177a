"""psycopg's socket waits under gevent (the deployment's gunicorn -k gevent workers).

psycopg notices gevent's monkey-patched `select` and then waits with `select.poll()`, which
gevent emulates in Python: a poll object, a watcher and a timeout per wait. The metering API
waits four times a request, and those emulated polls were ~8% of a worker's CPU under load
(py-spy). `install()` gives psycopg a wait made of gevent's own primitives instead: one io
watcher on the event loop per wait, no polling interval (the hub delivers signals itself).
Nothing changes without gevent's patches (psycopg's C wait stays), nor if psycopg's internals
this relies on are missing (psycopg's own wait stays). Those internals (waiting.wait, its
WAIT_*/READY_* constants, errors._WaitTimeout) are pinned in pyproject.toml and checked by
tests/core/test_library_internals.py.

`not_yielding()`: a request that holds a row lock every other request of its kind queues on (a
hot coupon's) would, after each round trip, wait for its worker to schedule it again (under
load, milliseconds), and every queued request waits that long too. Inside it, psycopg's waits
block the worker instead (psycopg's C wait), so the round trip costs the lock just its own
time. Only for a round trip that waits on nothing but the server (the COMMIT after the take),
never for one that could wait on a lock another greenlet of the worker holds.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from time import monotonic


def gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("select"))


def install() -> bool:
    """Use wait_gevent for psycopg's waits when gevent has patched `select`; True if it did."""
    if not gevent_patched():
        return False
    from psycopg import errors, waiting

    if not (hasattr(waiting, "wait") and hasattr(errors, "_WaitTimeout")):
        return False
    from gevent.socket import wait_read, wait_readwrite, wait_write

    _WAITS.update({waiting.WAIT_R: (wait_read, waiting.READY_R), waiting.WAIT_W: (wait_write, waiting.READY_W),
                   waiting.WAIT_RW: (wait_readwrite, waiting.READY_RW)})
    _TIMEOUT[:] = [errors._WaitTimeout]
    _BLOCKING[:] = [getattr(waiting, "wait_c", None) or waiting.wait]  # the wait psycopg chose (a blocking one)
    waiting.wait = wait_gevent
    return True


# psycopg's wait requests -> (gevent's wait, the readiness reported back); filled by install().
_WAITS: dict = {}
_TIMEOUT: list = []  # psycopg's timeout error class
_BLOCKING: list = []  # psycopg's C wait: blocks the worker (not_yielding)
_not_yielding: ContextVar[bool] = ContextVar("rephlo_not_yielding", default=False)


@contextmanager
def not_yielding():
    """psycopg's waits meanwhile block the worker instead of yielding to its other greenlets
    (module docstring: only for a round trip that waits on no other greenlet)."""
    token = _not_yielding.set(True)
    try:
        yield
    finally:
        _not_yielding.reset(token)


def wait_gevent(gen, fileno: int, interval: float | None = 0.0, timeout: float | None = None):
    """psycopg's wait(gen, fileno, interval, timeout): run the protocol generator `gen`, waiting
    on the socket for what it asks for. On a wait for reading and writing the generator is told
    both are ready (it then reads what there is without blocking and tries to write again)."""
    if _not_yielding.get() and timeout is None and _BLOCKING:
        return _BLOCKING[0](gen, fileno, interval)
    deadline = None if timeout is None else monotonic() + timeout
    try:
        wanted = next(gen)
        while True:
            wait, ready = _WAITS[wanted]
            if deadline is None:
                wait(fileno)
            else:
                left = deadline - monotonic()
                expired = _TIMEOUT[0]("wait timeout expired")
                if left <= 0:
                    raise expired
                wait(fileno, timeout=left, timeout_exc=expired)
            wanted = gen.send(ready)
    except StopIteration as done:
        return done.value
