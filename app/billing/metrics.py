"""Revenue figures for the analytics screen: MRR, churn and the failed-payment rate,
over production data unless the viewer includes test data."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.billing.models import PaymentTransaction, Subscription, SubscriptionTier
from app.core import clock
from app.core.money import CENT

PAYING = ("active", "past_due", "grace_period")


@dataclass
class Revenue:
    mrr: Decimal
    paying: int
    by_tier: list[tuple[str, int, Decimal]]
    by_status: dict[str, int]
    churned: int
    churn_base: int
    churn_rate: Decimal | None
    charges: int
    failed_charges: int
    failed_rate: Decimal | None
    window_days: int


def _pct(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) * 100 / whole).quantize(CENT)


def _scoped(stmt, model, include_test: bool):
    return stmt if include_test else stmt.where(model.is_test.is_(False))


def mrr_by_tier(session, include_test: bool = False) -> tuple[Decimal, int, list[tuple[str, int, Decimal]]]:
    """MRR, paying subscriptions and (tier, paying, MRR) biggest first, over paying statuses."""
    rows = session.execute(_scoped(
        select(SubscriptionTier.name, Subscription.billing_cycle, SubscriptionTier.monthly_price,
               SubscriptionTier.annual_price, func.count(Subscription.id))
        .join(SubscriptionTier, SubscriptionTier.id == Subscription.tier_id)
        .where(Subscription.status.in_(PAYING))
        .group_by(SubscriptionTier.name, Subscription.billing_cycle, SubscriptionTier.monthly_price,
                  SubscriptionTier.annual_price), Subscription, include_test)).all()
    tiers: dict[str, list] = {}
    for name, cycle, monthly, annual, count in rows:
        per_month = monthly if cycle == "monthly" else (annual if annual is not None else monthly * 12) / 12
        entry = tiers.setdefault(name, [0, Decimal("0")])
        if per_month > 0:
            entry[0] += count
        entry[1] += per_month * count
    by_tier = sorted(((n, c, v.quantize(CENT)) for n, (c, v) in tiers.items()), key=lambda t: -t[2])
    return sum((v for _, _, v in by_tier), Decimal("0.00")), sum(c for _, c, _ in by_tier), by_tier


def revenue(session, include_test: bool = False, window_days: int = 30) -> Revenue:
    now = clock.now()
    since = now - timedelta(days=window_days)

    def scoped(stmt, model):
        return _scoped(stmt, model, include_test)

    mrr, paying, by_tier = mrr_by_tier(session, include_test)
    by_status = dict(session.execute(scoped(select(Subscription.status, func.count()).group_by(Subscription.status),
                                            Subscription)).all())
    paid_tier = SubscriptionTier.monthly_price > 0
    churned = session.scalar(scoped(
        select(func.count()).select_from(Subscription).join(SubscriptionTier).where(
            paid_tier, Subscription.status == "cancelled", Subscription.cancelled_at >= since), Subscription)) or 0
    base = session.scalar(scoped(
        select(func.count()).select_from(Subscription).join(SubscriptionTier).where(
            paid_tier, Subscription.created_at < since,
            (Subscription.status != "cancelled") | (Subscription.cancelled_at >= since)), Subscription)) or 0
    charge_counts = dict(session.execute(scoped(
        select(PaymentTransaction.status, func.count()).where(
            PaymentTransaction.kind == "charge", PaymentTransaction.created_at >= since,
            PaymentTransaction.status.in_(("succeeded", "failed"))).group_by(PaymentTransaction.status),
        PaymentTransaction)).all())
    charges = sum(charge_counts.values())
    failed = charge_counts.get("failed", 0)
    return Revenue(mrr, paying, by_tier, by_status, churned, base, _pct(churned, base),
                   charges, failed, _pct(failed, charges), window_days)


def active_by_tier(session, include_test: bool = False) -> dict[str, int]:
    """Subscriptions in status active, per tier name."""
    return dict(session.execute(_scoped(
        select(SubscriptionTier.name, func.count(Subscription.id))
        .join(SubscriptionTier, SubscriptionTier.id == Subscription.tier_id)
        .where(Subscription.status == "active").group_by(SubscriptionTier.name), Subscription, include_test)).all())


def net_collected_by_day(session, start: date, end: date, include_test: bool = False) -> list[dict]:
    """Money collected per UTC day from start to end: succeeded charges minus succeeded refunds."""
    from app.credits.ledger import day_of, day_start

    p = PaymentTransaction
    day = day_of(session, p.created_at)
    rows = session.execute(_scoped(
        select(day, p.kind, func.sum(p.amount))
        .where(p.created_at >= day_start(start), p.created_at < day_start(end + timedelta(days=1)),
               p.status == "succeeded", p.kind.in_(("charge", "refund"))).group_by(day, p.kind), p, include_test))
    net: dict[str, Decimal] = {}
    for d, kind, amount in rows:
        key = d.isoformat() if isinstance(d, date) else str(d)
        net[key] = net.get(key, Decimal("0.00")) + (amount if kind == "charge" else -amount)
    out, d = [], start
    while d <= end:
        out.append({"date": d.isoformat(), "net": net.get(d.isoformat(), Decimal("0.00")).quantize(CENT)})
        d += timedelta(days=1)
    return out
