"""The embedded default's worker: background jobs on one thread of the app process.

With no Redis, enqueue() used to run a job inside the request, which then answered only when
the job was done (a delete-all's progress bar went from nothing to 100%). Here the request
records the job and hands it over; one daemon thread runs jobs in order, each in an app
context of its own and with a session of its own, as an RQ work horse would.
"""
from __future__ import annotations

import logging
import queue
import threading

from app.core.jobs import execute
from app.extensions import db

log = logging.getLogger(__name__)

_queue: queue.Queue = queue.Queue()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def submit(app, record_id: str, func_path: str, args: list, kwargs: dict) -> None:
    """Queue a recorded job for the worker thread (started on first use)."""
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_work, name="rephlo-jobs", daemon=True)
            _thread.start()
    _queue.put((app, record_id, func_path, args, kwargs))


def _work() -> None:
    while True:
        app, record_id, func_path, args, kwargs = _queue.get()
        try:
            with app.app_context():
                try:
                    execute(record_id, func_path, args, kwargs)
                finally:
                    db.session.remove()
        except Exception:  # execute() records the failure; this keeps the thread alive
            log.exception("job %s could not run", record_id)
        finally:
            _queue.task_done()


def wait_idle(timeout: float | None = None) -> bool:
    """True once every submitted job has finished (tests wait on it)."""
    done = threading.Event()

    def _join():
        _queue.join()
        done.set()

    threading.Thread(target=_join, daemon=True).start()
    return done.wait(timeout)
