"""Daily summaries, each built by one set-based INSERT ... SELECT ... GROUP BY after deleting
the day's rows: re-running a day gives identical rows, and is_test is part of every key so
production and test figures never mix.

With the per-user summaries, each build also writes the day's production totals system-wide
(credit_daily_totals, model_daily_totals): `daily_totals()` reads 30 days of them in a few
rows, adds the per-user test rows when asked, and reads only the days not built yet (today)
from the ledgers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Date, delete, false, func, insert, literal, select, true, union_all

from app.core import clock
from app.credits.formula import six
from app.credits.ledger import built_days, day_of, day_start, day_window, unbuilt_ranges
from app.credits.models import (CreditAllocation, CreditDailyTotal, CreditDeduction, CreditUsageDaily,
                                ModelDailyTotal, SummaryRun, TokenUsage, TokenUsageDaily, UsageSums)

USAGE_SUMS = tuple(UsageSums.__annotations__)  # request_count ... credits


def _token_select(day: date):
    u = TokenUsage.__table__
    start, end = day_start(day), day_start(day + timedelta(days=1))
    return select(
        literal(day, Date), u.c.user_id, u.c.model_name, u.c.is_test, func.count(), func.sum(u.c.input_tokens),
        func.sum(u.c.output_tokens), func.sum(u.c.vendor_cost_usd), func.sum(u.c.customer_cost_usd),
        func.sum(u.c.credits),
    ).where(u.c.created_at >= start, u.c.created_at < end).group_by(u.c.user_id, u.c.model_name, u.c.is_test)


def _credit_select(day: date):
    """Per user and test flag: credits in and out that day, and the balance at the end of the day
    as the ledgers tell it (everything allocated minus everything deducted until midnight)."""
    a, d = CreditAllocation.__table__, CreditDeduction.__table__
    start, end = day_start(day), day_start(day + timedelta(days=1))
    moves = union_all(
        select(a.c.user_id, a.c.is_test, a.c.amount.label("allocated"), literal(0).label("deducted"))
        .where(a.c.created_at >= start, a.c.created_at < end),
        select(d.c.user_id, d.c.is_test, literal(0), d.c.amount).where(d.c.created_at >= start, d.c.created_at < end),
    ).subquery("moves")
    a2, d2 = a.alias("a_to_date"), d.alias("d_to_date")
    allocated_to_date = select(func.coalesce(func.sum(a2.c.amount), 0)).where(
        a2.c.user_id == moves.c.user_id, a2.c.created_at < end).scalar_subquery()
    deducted_to_date = select(func.coalesce(func.sum(d2.c.amount), 0)).where(
        d2.c.user_id == moves.c.user_id, d2.c.created_at < end).scalar_subquery()
    return select(
        literal(day, Date), moves.c.user_id, moves.c.is_test, func.sum(moves.c.allocated),
        func.sum(moves.c.deducted), allocated_to_date - deducted_to_date,
    ).group_by(moves.c.user_id, moves.c.is_test)


def build_day(session, day: date) -> dict:
    """(Re)build both summaries for one UTC day; the caller commits."""
    t, c = TokenUsageDaily.__table__, CreditUsageDaily.__table__
    conn = session.connection()
    conn.execute(delete(t).where(t.c.day == day))
    conn.execute(insert(t).from_select(
        ["day", "user_id", "model_name", "is_test", "request_count", "input_tokens", "output_tokens",
         "vendor_cost_usd", "customer_cost_usd", "credits"], _token_select(day)))
    conn.execute(delete(c).where(c.c.day == day))
    conn.execute(insert(c).from_select(
        ["day", "user_id", "is_test", "credits_allocated", "credits_deducted", "balance_eod"],
        _credit_select(day)))
    _build_totals(conn, day)
    # (INSERT ... SELECT reports no rowcount through SQLAlchemy; count by the primary key instead)
    tokens = conn.execute(select(func.count()).select_from(t).where(t.c.day == day)).scalar_one()
    credits = conn.execute(select(func.count()).select_from(c).where(c.c.day == day)).scalar_one()
    session.execute(delete(SummaryRun).where(SummaryRun.day == day))
    session.add(SummaryRun(day=day, built_at=clock.now(), token_rows=tokens, credit_rows=credits))
    session.flush()
    return {"day": day.isoformat(), "token_rows": tokens, "credit_rows": credits}


def _build_totals(conn, day: date) -> None:
    """The day's production totals, from the per-user summaries just built (one row even on a quiet day)."""
    t, c = TokenUsageDaily.__table__, CreditUsageDaily.__table__
    ct, mt = CreditDailyTotal.__table__, ModelDailyTotal.__table__
    conn.execute(delete(ct).where(ct.c.day == day))
    conn.execute(insert(ct).from_select(["day", "credits_allocated", "credits_deducted"], select(
        literal(day, Date), func.coalesce(func.sum(c.c.credits_allocated), 0),
        func.coalesce(func.sum(c.c.credits_deducted), 0)).where(c.c.day == day, c.c.is_test == false())))
    conn.execute(delete(mt).where(mt.c.day == day))
    conn.execute(insert(mt).from_select(["day", "model_name", *USAGE_SUMS], select(
        literal(day, Date), t.c.model_name, *[func.sum(t.c[name]) for name in USAGE_SUMS])
        .where(t.c.day == day, t.c.is_test == false()).group_by(t.c.model_name)))


@dataclass
class DailyTotals:
    """Credits issued and spent per day (every day of the range) and usage per model."""

    by_day: list[dict]
    by_model: list[dict]

    @property
    def issued(self) -> int:
        return sum(d["issued"] for d in self.by_day)

    @property
    def spent(self) -> int:
        return sum(d["spent"] for d in self.by_day)

    def top_models(self, limit: int = 5) -> list[dict]:
        return sorted(self.by_model, key=lambda m: (-m["vendor_cost"], m["model"]))[:limit]


def daily_totals(session, start: date, end: date, include_test: bool = False) -> DailyTotals:
    """System-wide credits and model usage from start to end (UTC days), production only unless
    asked: built days from the totals (plus the summaries' test rows), the rest from the ledgers.
    Today is always read live: a summary built during the day would miss its later rows."""
    built = sorted(built_days(session, start, min(end, clock.now().date() - timedelta(days=1))))
    days: dict[date, list[int]] = {}
    models: dict[str, list] = {}

    def add_day(day, issued, spent):
        cell = days.setdefault(day if isinstance(day, date) else date.fromisoformat(str(day)), [0, 0])
        cell[0] += int(issued or 0)
        cell[1] += int(spent or 0)

    def add_model(name, *sums):
        cell = models.setdefault(name, [0, 0, 0, Decimal(0), Decimal(0), 0])
        for i, value in enumerate(sums):
            cell[i] += Decimal(value or 0) if i in (3, 4) else int(value or 0)

    if built:
        ct, mt = CreditDailyTotal, ModelDailyTotal
        for row in session.execute(select(ct.day, ct.credits_allocated, ct.credits_deducted).where(ct.day.in_(built))):
            add_day(*row)
        for row in session.execute(select(mt.model_name, *[func.sum(getattr(mt, n)) for n in USAGE_SUMS])
                                   .where(mt.day.in_(built)).group_by(mt.model_name)):
            add_model(*row)
        if include_test:
            c, t = CreditUsageDaily, TokenUsageDaily
            for row in session.execute(select(c.day, func.sum(c.credits_allocated), func.sum(c.credits_deducted))
                                       .where(c.is_test == true(), c.day.in_(built)).group_by(c.day)):
                add_day(*row)
            for row in session.execute(select(t.model_name, *[func.sum(getattr(t, n)) for n in USAGE_SUMS])
                                       .where(t.is_test == true(), t.day.in_(built)).group_by(t.model_name)):
                add_model(*row)
    for lo, hi in unbuilt_ranges(start, end, set(built)):
        for ledger in (CreditAllocation, CreditDeduction):
            day = day_of(session, ledger.created_at)
            for d, total in session.execute(select(day, func.sum(ledger.amount))
                                            .where(*day_window(ledger, lo, hi, include_test)).group_by(day)):
                add_day(d, total if ledger is CreditAllocation else 0, total if ledger is CreditDeduction else 0)
        u = TokenUsage
        for row in session.execute(select(u.model_name, func.count(), func.sum(u.input_tokens),
                                          func.sum(u.output_tokens), func.sum(u.vendor_cost_usd),
                                          func.sum(u.customer_cost_usd), func.sum(u.credits))
                                   .where(*day_window(u, lo, hi, include_test)).group_by(u.model_name)):
            add_model(*row)
    by_day = [{"date": day.isoformat(), "issued": days.get(day, (0, 0))[0], "spent": days.get(day, (0, 0))[1]}
              for day in clock.days(start, end)]
    by_model = [{"model": name, "requests": v[0], "tokens": v[1] + v[2], "vendor_cost": v[3],
                 "vendor_cost_usd": six(v[3]), "customer_cost_usd": six(v[4]), "credits": v[5]}
                for name, v in models.items()]
    return DailyTotals(by_day, by_model)


def token_rows(session, day: date, include_test: bool = False) -> list[TokenUsageDaily]:
    stmt = select(TokenUsageDaily).where(TokenUsageDaily.day == day)
    if not include_test:
        stmt = stmt.where(TokenUsageDaily.is_test.is_(False))
    return list(session.scalars(stmt.order_by(TokenUsageDaily.user_id, TokenUsageDaily.model_name)))


def credit_rows(session, day: date, include_test: bool = False) -> list[CreditUsageDaily]:
    stmt = select(CreditUsageDaily).where(CreditUsageDaily.day == day)
    if not include_test:
        stmt = stmt.where(CreditUsageDaily.is_test.is_(False))
    return list(session.scalars(stmt.order_by(CreditUsageDaily.user_id)))


def last_runs(session, limit: int = 7) -> list[SummaryRun]:
    return list(session.scalars(select(SummaryRun).order_by(SummaryRun.day.desc()).limit(limit)))
