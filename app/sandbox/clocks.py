"""Test clocks (as Stripe has them): a test account can live on its own simulated time.

A clock holds the account's "now" (`frozen_time`). It stands still until staff advance it;
advancing runs every registered hook for the span that passed, so a subscription can renew,
allocate credits or go through dunning in seconds instead of a month. Production accounts
never have a clock.

How a domain hooks in (the billing issue):

    from app.sandbox import clocks as test_clocks

    now = test_clocks.now_for(session, user_id)          # instead of clock.now() for that user

    @test_clocks.on_advance("billing.renewals")
    def _renew(session, user_id, old, new) -> dict:       # run what fell due in (old, new]
        return {"renewed": n}                             # JSON-able summary for the audit log

Clocks belong to their account (ON DELETE CASCADE, is_test), so cleanup removes them with it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select

from app.core import audit, clock
from app.core.errors import Conflict, DomainError, NotFound
from app.sandbox.clock_models import TestClock
from app.users.models import User

MAX_ADVANCE = timedelta(days=400)  # one step at most: a yearly renewal and a little more

Hook = Callable[[Any, int, datetime, datetime], Any]
_HOOKS: dict[str, Hook] = {}


def on_advance(name: str) -> Callable[[Hook], Hook]:
    """Register a hook run when any test clock advances (name it after its domain)."""

    def register(hook: Hook) -> Hook:
        _HOOKS[name] = hook
        return hook

    return register


def remove_hook(name: str) -> None:
    _HOOKS.pop(name, None)


def clock_for(session, user_id: int) -> TestClock | None:
    return session.scalar(select(TestClock).where(TestClock.user_id == user_id))


def now_for(session, user_id: int) -> datetime:
    """The account's own now: its test clock's time, else the app clock."""
    test_clock = clock_for(session, user_id)
    return test_clock.frozen_time if test_clock is not None else clock.now()


def list_clocks(session) -> list[TestClock]:
    return list(session.scalars(select(TestClock).order_by(TestClock.created_at.desc(), TestClock.id.desc())))


def get_clock(session, clock_id: int) -> TestClock:
    test_clock = session.get(TestClock, clock_id)
    if test_clock is None:
        raise NotFound("test clock")
    return test_clock


def create_clock(session, email: str, *, actor) -> TestClock:
    """Attach a clock, starting at the current time, to the test account with this email."""
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise DomainError("user_not_found", "No account has this email.", field="email")
    if not user.is_test or user.account_type != "test":
        raise DomainError("not_a_test_account", "Test clocks are for test accounts only.", field="email")
    if clock_for(session, user.id) is not None:
        raise Conflict("clock_exists", "This test account has a test clock already.", field="email")
    test_clock = TestClock(user_id=user.id, user=user, frozen_time=clock.now(), is_test=True,
                           created_by_id=getattr(actor, "id", None))
    session.add(test_clock)
    session.flush()
    audit.record(session, "testdata.clock_created", actor=actor, target=user,
                 after={"frozen_time": test_clock.frozen_time.isoformat()}, is_test=True)
    return test_clock


def advance(session, test_clock: TestClock, *, by: timedelta, actor) -> dict[str, Any]:
    """Move the clock forward by `by` and run every hook for the span; returns their summaries."""
    if by <= timedelta(0):
        raise DomainError("clock_backwards", "A test clock only moves forward: advance it by some time.", field="days")
    if by > MAX_ADVANCE:
        raise DomainError("advance_too_far", f"Advance at most {MAX_ADVANCE.days} days at a time.", field="days")
    old, new = test_clock.frozen_time, test_clock.frozen_time + by
    test_clock.frozen_time = new
    results = {name: hook(session, test_clock.user_id, old, new) for name, hook in sorted(_HOOKS.items())}
    audit.record(session, "testdata.clock_advanced", actor=actor, target=test_clock.user,
                 before={"frozen_time": old.isoformat()},
                 after={"frozen_time": new.isoformat(), "hooks": results}, is_test=True)
    return results


def delete_clock(session, test_clock: TestClock, *, actor) -> None:
    """The account goes back to real time."""
    audit.record(session, "testdata.clock_deleted", actor=actor, target=test_clock.user,
                 before={"frozen_time": test_clock.frozen_time.isoformat()}, is_test=True)
    session.delete(test_clock)
