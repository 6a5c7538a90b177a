"""Revenue figures for the analytics screen: MRR, churn and the failed-payment rate,
over production data unless the viewer includes test data."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, select

from app.billing.models import PaymentTransaction, RevenueDailyTotal, Subscription, SubscriptionTier
from app.billing.tiers import all_tiers
from app.core import clock
from app.core.money import CENT
from app.credits.ledger import day_of, day_window, unbuilt_ranges

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


@dataclass
class SubscriptionCounts:
    """Live subscriptions counted once by (tier, billing cycle, status): MRR and the active
    subscriptions per tier both come from this one index-only grouped scan."""

    rows: list[tuple[SubscriptionTier, str, str, int]]
    tiers: list[SubscriptionTier]  # every tier, in display order

    def mrr_by_tier(self) -> tuple[Decimal, int, list[tuple[str, int, Decimal]]]:
        """MRR, paying subscriptions and (tier, paying, MRR) biggest first, over paying statuses."""
        tiers: dict[str, list] = {}
        for tier, cycle, status, count in self.rows:
            if status not in PAYING:
                continue
            monthly, annual = tier.monthly_price, tier.annual_price
            per_month = monthly if cycle == "monthly" else (annual if annual is not None else monthly * 12) / 12
            entry = tiers.setdefault(tier.name, [0, Decimal("0")])
            if per_month > 0:
                entry[0] += count
            entry[1] += per_month * count
        by_tier = sorted(((n, c, v.quantize(CENT)) for n, (c, v) in tiers.items()), key=lambda t: -t[2])
        return sum((v for _, _, v in by_tier), Decimal("0.00")), sum(c for _, c, _ in by_tier), by_tier

    def active_by_tier(self) -> dict[str, int]:
        """Subscriptions in status active, per tier name."""
        out: dict[str, int] = {}
        for tier, _, status, count in self.rows:
            if status == "active":
                out[tier.name] = out.get(tier.name, 0) + count
        return out


def subscription_counts(session, include_test: bool = False) -> SubscriptionCounts:
    s = Subscription
    rows = session.execute(_scoped(select(s.tier_id, s.billing_cycle, s.status, func.count())
                                   .where(s.status.in_(PAYING)).group_by(s.tier_id, s.billing_cycle, s.status),
                                   s, include_test)).all()
    every = all_tiers(session)
    by_id = {t.id: t for t in every}
    return SubscriptionCounts([(by_id[tier_id], cycle, status, count) for tier_id, cycle, status, count in rows], every)


def revenue(session, include_test: bool = False, window_days: int = 30) -> Revenue:
    now = clock.now()
    since = now - timedelta(days=window_days)

    def scoped(stmt, model):
        return _scoped(stmt, model, include_test)

    mrr, paying, by_tier = subscription_counts(session, include_test).mrr_by_tier()
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


def _collected(session, *conds) -> dict[str, Decimal]:
    """Succeeded charges minus succeeded refunds per UTC day (ISO date) of the payments matching conds."""
    p = PaymentTransaction
    day = day_of(session, p.created_at)
    net: dict[str, Decimal] = {}
    for d, kind, amount in session.execute(select(day, p.kind, func.sum(p.amount)).where(
            *conds, p.status == "succeeded", p.kind.in_(("charge", "refund"))).group_by(day, p.kind)):
        key = d.isoformat() if isinstance(d, date) else str(d)
        net[key] = net.get(key, Decimal("0.00")) + (amount if kind == "charge" else -amount)
    return net


def build_revenue_day(session, day: date) -> dict:
    """(Re)build one day's production total; the caller commits."""
    p, t = PaymentTransaction, RevenueDailyTotal
    succeeded = [*day_window(p, day, day, include_test=False), p.status == "succeeded"]
    charges, refunds = (session.scalar(select(func.coalesce(func.sum(p.amount), 0)).where(*succeeded, p.kind == kind))
                        for kind in ("charge", "refund"))
    session.execute(delete(t).where(t.day == day))
    session.add(t(day=day, charges=Decimal(charges), refunds=Decimal(refunds), built_at=clock.now()))
    session.flush()
    return {"day": day.isoformat(), "charges": str(Decimal(charges).quantize(CENT)),
            "refunds": str(Decimal(refunds).quantize(CENT))}


def net_collected_by_day(session, start: date, end: date, include_test: bool = False) -> list[dict]:
    """Money collected per UTC day from start to end: succeeded charges minus succeeded refunds.
    Built days come from the daily totals, the others (today always) from the payments; test
    payments, when asked for, are read live."""
    t, p = RevenueDailyTotal, PaymentTransaction
    last_built = min(end, clock.now().date() - timedelta(days=1))
    built = {r.day: r for r in session.scalars(select(t).where(t.day.between(start, last_built)))}
    net = {day.isoformat(): row.charges - row.refunds for day, row in built.items()}
    for lo, hi in unbuilt_ranges(start, end, set(built)):
        for key, amount in _collected(session, *day_window(p, lo, hi, include_test=False)).items():
            net[key] = net.get(key, Decimal("0.00")) + amount
    if include_test:
        for key, amount in _collected(session, *day_window(p, start, end, include_test=True), p.is_test.is_(True)).items():
            net[key] = net.get(key, Decimal("0.00")) + amount
    return [{"date": d.isoformat(), "net": net.get(d.isoformat(), Decimal("0.00")).quantize(CENT)}
            for d in clock.days(start, end)]
