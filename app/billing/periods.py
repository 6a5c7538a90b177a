"""Billing-period arithmetic.

A period runs from its first instant to the last second of its last day (seed 001 writes
2025-11-01T00:00:00Z .. 2025-11-30T23:59:59Z), which makes DESIGN.md §4's day counts come
out as the seed's: 15 days remain of 30 when a change takes effect on 2025-11-15.
"""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone

ONE_SECOND = timedelta(seconds=1)
ONE_DAY = timedelta(days=1)


def add_months(moment: datetime, months: int, anchor_day: int | None = None) -> datetime:
    """Same time of day `months` later, on the anchor day clamped to the month's length."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(anchor_day or moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def cycle_months(cycle: str) -> int:
    return 12 if cycle == "annual" else 1


def period_bounds(start: datetime, cycle: str, anchor_day: int | None = None) -> tuple[datetime, datetime]:
    """The period beginning at start: (start, last second before the next period)."""
    nxt = add_months(start, cycle_months(cycle), anchor_day or start.day)
    return start, nxt - ONE_SECOND


def next_period_start(period_end: datetime) -> datetime:
    return period_end + ONE_SECOND


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def days_in_cycle(start: datetime, end: datetime) -> int:
    """Calendar days the period covers (30 for November)."""
    return (end.date() - start.date()).days + 1


def days_remaining(period_end: datetime, effective: datetime) -> int:
    """period_end - effective_date in whole days (DESIGN.md §4)."""
    if effective > period_end:
        return 0
    return (period_end - effective) // ONE_DAY
