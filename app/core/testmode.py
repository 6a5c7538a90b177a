"""Test mode for the current unit of work: which of the two worlds (test, live) it acts in.

A request or action is in test mode when its actor is a test account, a test staff persona,
a sandbox/development key, a test OAuth client or a test clock. Every row it creates is
marked is_test (core/models.py); every row it changes or deletes must be a test row, which
one guard under every write path enforces (core/world_guard.py). Responses carry
X-Test-Mode and log lines are tagged.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import or_

from app.core.errors import DomainError

_active: ContextVar[bool] = ContextVar("rephlo_test_mode", default=False)
# A test staff persona on the screens may still administer the shared catalogue (tiers, prices,
# margins, coupons, versions, roles): it has no test copy, and its changes are audited.
_catalogue: ContextVar[bool] = ContextVar("rephlo_test_mode_catalogue", default=False)
# The coupons' and campaigns' test-lane counters, written by a test redemption (coupons/redemption.py).
_test_lane: ContextVar[bool] = ContextVar("rephlo_test_lane", default=False)


class TestModeViolation(DomainError):
    """A test actor tried to change a production row: refused, nothing written."""

    __test__ = False  # not a pytest test class
    status = 403
    type = "permission_error"

    def __init__(self, message: str | None = None, field: str | None = None):
        super().__init__("test_mode_not_allowed", message or (
            "Test mode cannot change production data: only test accounts, their twins and test rows."), field)


def active() -> bool:
    return _active.get()


def is_test_row(owner=None) -> bool:
    """The is_test of a row created now, the one rule (DESIGN.md §3): a test row when its actor
    acts in test mode or when it belongs to a test owner (`owner`: a test account, a test
    balance or subscription, a row with is_test, or that flag itself). Every insert path asks
    this, the ORM's (core/models.py) and the credits ledgers' statements (is_test_sql) alike."""
    return _active.get() or bool(getattr(owner, "is_test", owner))


def is_test_sql(owner_is_test, test_mode):
    """is_test_row() inside a statement: `test_mode` binds active(), `owner_is_test` is the
    owner row's column (or a bound flag)."""
    return or_(test_mode, owner_is_test)


def may_change_sql(row_is_test, test_mode):
    """The WHERE of a statement that changes a row: in test mode only test rows (the guard of
    core/world_guard.py, for statements it cannot see: a write inside a CTE)."""
    return or_(row_is_test, ~test_mode)


def activate(*, catalogue: bool = False) -> None:
    """Turn test mode on for the rest of this request (reset at teardown)."""
    _active.set(True)
    if catalogue:
        _catalogue.set(True)


def clear() -> None:
    _active.set(False)
    _catalogue.set(False)
    _test_lane.set(False)


def catalogue_writable() -> bool:
    return _catalogue.get()


def in_test_lane() -> bool:
    return _test_lane.get()


@contextmanager
def test_mode(on: bool = True, *, catalogue: bool = False):
    """Test mode for a block; `catalogue` also lets it load the shared catalogue (the seed)."""
    token = _active.set(on or _active.get())
    shared = _catalogue.set(catalogue or _catalogue.get())
    try:
        yield
    finally:
        _catalogue.reset(shared)
        _active.reset(token)


@contextmanager
def paused():
    """Test mode off for a block: the API's own bookkeeping of a request (its key's last_used_at,
    the request counter), written after the request, whatever world the request acted in."""
    token = _active.set(False)
    try:
        yield
    finally:
        _active.reset(token)


@contextmanager
def test_lane():
    """Let a test redemption move the test-lane counters of a production coupon or campaign."""
    token = _test_lane.set(True)
    try:
        yield
    finally:
        _test_lane.reset(token)


@contextmanager
def test_data_tool():
    """The test-data tools (deleting test accounts, cleanup) run as live: every statement they
    make carries the is_test guard itself, and clearing the references production rows hold to
    a deleted test account (SET NULL, emulated on SQLite) is theirs to do in either world."""
    token = _active.set(False)
    try:
        yield
    finally:
        _active.reset(token)


def refuse_production_target(target, what: str = "account") -> None:
    """In test mode, an action aimed at a production account (or row) is refused before any work."""
    if active() and target is not None and not getattr(target, "is_test", True):
        raise TestModeViolation(f"Test mode acts on test accounts only: this {what} is production data.")
