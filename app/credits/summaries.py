"""Daily summaries, each built by one set-based INSERT ... SELECT ... GROUP BY after deleting
the day's rows: re-running a day gives identical rows, and is_test is part of every key so
production and test figures never mix.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Date, delete, func, insert, literal, select, union_all

from app.core import clock
from app.credits.ledger import day_start
from app.credits.models import (CreditAllocation, CreditDeduction, CreditUsageDaily, SummaryRun, TokenUsage,
                                TokenUsageDaily)


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
    # (INSERT ... SELECT reports no rowcount through SQLAlchemy; count by the primary key instead)
    tokens = conn.execute(select(func.count()).select_from(t).where(t.c.day == day)).scalar_one()
    credits = conn.execute(select(func.count()).select_from(c).where(c.c.day == day)).scalar_one()
    session.execute(delete(SummaryRun).where(SummaryRun.day == day))
    session.add(SummaryRun(day=day, built_at=clock.now(), token_rows=tokens, credit_rows=credits))
    session.flush()
    return {"day": day.isoformat(), "token_rows": tokens, "credit_rows": credits}


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
