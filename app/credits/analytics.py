"""System-wide credit figures for the system credits page and the admin analytics API:
production only unless test data is asked for, straight from the ledgers over a date range."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.core import clock
from app.credits.formula import six
from app.credits.ledger import day_of, day_window
from app.credits.models import CreditAllocation, CreditBalance, CreditDeduction, TokenUsage
from app.users.models import User


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def system(session, start: date, end: date, include_test: bool = False) -> dict:
    a, d, u = CreditAllocation, CreditDeduction, TokenUsage
    issued = dict(session.execute(select(day_of(session, a.created_at), func.sum(a.amount))
                                  .where(*day_window(a, start, end, include_test)).group_by(day_of(session, a.created_at))).all())
    spent = dict(session.execute(select(day_of(session, d.created_at), func.sum(d.amount))
                                 .where(*day_window(d, start, end, include_test)).group_by(day_of(session, d.created_at))).all())
    issued = {_iso(k): int(v) for k, v in issued.items()}
    spent = {_iso(k): int(v) for k, v in spent.items()}
    days = [{"date": day.isoformat(), "issued": issued.get(day.isoformat(), 0), "spent": spent.get(day.isoformat(), 0)}
            for day in clock.days(start, end)]
    usage = select(u.model_name, u.vendor_name, func.count(), func.sum(u.input_tokens + u.output_tokens),
                   func.sum(u.credits), func.sum(u.vendor_cost_usd), func.sum(u.customer_cost_usd)) \
        .where(*day_window(u, start, end, include_test)).group_by(u.model_name, u.vendor_name)
    by_model, by_vendor = [], {}
    totals = {"requests": 0, "tokens": 0, "credits": 0, "vendor_cost": Decimal(0), "customer_cost": Decimal(0)}
    for model, vendor, requests, tokens, credits, vcost, ccost in session.execute(usage):
        vcost, ccost = Decimal(vcost or 0), Decimal(ccost or 0)
        row = {"model": model, "vendor": vendor, "requests": requests, "tokens": int(tokens or 0),
               "credits": int(credits or 0), "vendor_cost_usd": six(vcost), "customer_cost_usd": six(ccost)}
        by_model.append(row)
        v = by_vendor.setdefault(vendor, {"vendor": vendor, "requests": 0, "tokens": 0, "credits": 0,
                                          "_v": Decimal(0), "_c": Decimal(0)})
        v["requests"] += requests
        v["tokens"] += row["tokens"]
        v["credits"] += row["credits"]
        v["_v"] += vcost
        v["_c"] += ccost
        totals["requests"] += requests
        totals["tokens"] += row["tokens"]
        totals["credits"] += row["credits"]
        totals["vendor_cost"] += vcost
        totals["customer_cost"] += ccost
    vendors = [{**{k: v for k, v in row.items() if not k.startswith("_")},
                "vendor_cost_usd": six(row["_v"]), "customer_cost_usd": six(row["_c"])}
               for row in sorted(by_vendor.values(), key=lambda r: -r["credits"])]
    active = session.scalar(select(func.count(func.distinct(d.user_id))).where(*day_window(d, start, end, include_test)))
    return {
        "start": start.isoformat(), "end": end.isoformat(), "include_test": include_test,
        "totals": {"credits_issued": sum(issued.values()), "credits_spent": sum(spent.values()),
                   "active_users": active or 0, "requests": totals["requests"], "tokens": totals["tokens"],
                   "usage_credits": totals["credits"], "vendor_cost_usd": six(totals["vendor_cost"]),
                   "customer_cost_usd": six(totals["customer_cost"]),
                   "margin_usd": six(totals["customer_cost"] - totals["vendor_cost"])},
        "by_day": days,
        "by_model": sorted(by_model, key=lambda r: -r["credits"]),
        "by_vendor": vendors,
    }


def top_spenders(session, start: date, end: date, include_test: bool = False, limit: int = 10) -> list[dict]:
    d = CreditDeduction
    total = func.sum(d.amount).label("credits")
    rows = session.execute(
        select(d.user_id, User.email, User.is_test, total, func.count())
        .join(User, User.id == d.user_id)
        .where(*day_window(d, start, end, include_test))
        .group_by(d.user_id, User.email, User.is_test).order_by(total.desc(), d.user_id).limit(limit))
    return [{"user_id": uid, "email": email, "is_test": is_test, "credits_spent": int(credits), "deductions": count}
            for uid, email, is_test, credits, count in rows]


def find_users(session, q: str, limit: int = 20) -> list[dict]:
    """Users whose email contains q, with their balance (for the credits page's search)."""
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = session.execute(
        select(User.id, User.email, User.is_test, CreditBalance.tier,
               CreditBalance.subscription_credits + CreditBalance.bonus_credits)
        .outerjoin(CreditBalance, CreditBalance.user_id == User.id)
        .where(User.email.like(pattern, escape="\\"), User.deleted_at.is_(None))
        .order_by(User.email).limit(limit))
    return [{"id": uid, "email": email, "is_test": is_test, "tier": tier or "—", "total": total or 0}
            for uid, email, is_test, tier, total in rows]
