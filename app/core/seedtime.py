"""The seed's calendar moved to today, so the demo is alive on the day it is loaded.

Seed 001 is dated November 2025: its coupons expired, its usage and redemptions fell out of
every 30-day view. Its own "today" is SEED_TODAY (inside the Black Friday window, after the
seed's redemptions, usage and activations); `at()` moves a seed timestamp by whole days from
that day to the clock's today (a plan of the seed written on another day passes its own: the
licensing plan's is 2025-11-09, the day after its devices last checked in), so every relation (before, after, inside a window, N days
apart) and every time of day is kept. Reference data that is history, not traffic (model
prices, margins, the personas' role assignments), keeps its own dates.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from app.core import clock

SEED_TODAY = date(2025, 11, 27)


def shift(seed_today: date = SEED_TODAY) -> timedelta:
    """Whole days from the seed's today to the clock's today."""
    return timedelta(days=(clock.now().date() - seed_today).days)


def at(text: str | None, seed_today: date = SEED_TODAY) -> datetime | None:
    """A seed timestamp ("2025-11-25T10:30:00Z") on today's calendar."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc) + shift(seed_today)


def day(value: str | date, seed_today: date = SEED_TODAY) -> date:
    """A seed day ("2025-11-08") on today's calendar."""
    return (date.fromisoformat(value) if isinstance(value, str) else value) + shift(seed_today)
