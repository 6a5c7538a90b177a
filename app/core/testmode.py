"""Test mode for the current unit of work.

A request authenticated by a sandbox/development key or a test account, or a staff
action on a test account, runs in test mode: every row it writes is marked is_test
(see IsTestMixin's flush hook), responses carry X-Test-Mode and log lines are tagged.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_active: ContextVar[bool] = ContextVar("rephlo_test_mode", default=False)


def active() -> bool:
    return _active.get()


def activate() -> None:
    """Turn test mode on for the rest of this request (reset at teardown)."""
    _active.set(True)


def clear() -> None:
    _active.set(False)


@contextmanager
def test_mode(on: bool = True):
    token = _active.set(on or _active.get())
    try:
        yield
    finally:
        _active.reset(token)
