"""The admin dashboard's figures: what an ops lead reads first every morning.

Every figure is production data unless the viewer includes test data, and comes from the
domain services that own it, each an indexed aggregate or a read of the daily totals: users
from the production views (app.sandbox.statistics), MRR and money collected from billing
metrics, the dunning queue's length, credits and model usage from the credits daily totals
(app.credits.summaries), license activations, coupon redemptions and open fraud flags.

A card is shown only to a viewer holding `analytics.view_dashboard` and the card's own
permission (the one its list screen asks for; an auditor sees no revenue), and only the
shown cards' figures are computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

from sqlalchemy import func, select

from app.billing import dunning, metrics
from app.core import clock
from app.coupons import fraud, redemption
from app.credits import summaries
from app.credits.ledger import day_of, day_start
from app.licensing import activations
from app.sandbox import statistics

WINDOW_DAYS = 30
DASHBOARD_PERMISSION = "analytics.view_dashboard"


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    permission: str
    endpoint: str  # the list screen its figures link to


CARDS: tuple[Card, ...] = (
    Card("new_users", "New users", "users.view", "users.index"),
    Card("subscriptions", "Active subscriptions", "subscriptions.view", "billing.subscriptions"),
    Card("revenue", "Revenue", "analytics.view_revenue", "billing_admin.revenue"),
    Card("failed_payments", "Failed payments in dunning", "subscriptions.view", "billing_admin.failed_payments"),
    Card("credits", "Credits issued and spent", "analytics.view_usage", "credits.system"),
    Card("top_models", "Top models by cost", "analytics.view_usage", "credits.system"),
    Card("licenses", "License activations", "licenses.view", "licensing.index"),
    Card("coupons", "Coupon redemptions", "coupons.view", "coupons.index"),
    Card("fraud", "Fraud flags", "coupons.approve_redemption", "coupon_fraud.queue"),
)


def visible_cards(can: Callable[[str], bool]) -> list[Card]:
    if not can(DASHBOARD_PERMISSION):
        return []
    return [card for card in CARDS if can(card.permission)]


@dataclass
class Dashboard:
    cards: list[Card]
    include_test: bool
    start: date
    today: date
    figures: dict[str, dict] = field(default_factory=dict)  # by card name, only the cards shown


def window(today: date | None = None) -> tuple[date, date]:
    """The 30 UTC days ending today (today included)."""
    today = today or clock.now().date()
    return today - timedelta(days=WINDOW_DAYS - 1), today


def new_users(session, start: date, today: date, include_test: bool) -> dict:
    users = statistics.source("users", include_test)
    day = day_of(session, users.c.created_at)
    counts = {str(d): n for d, n in session.execute(
        select(day, func.count()).select_from(users).where(users.c.created_at >= day_start(start))
        .group_by(day))}
    by_day = [{"date": d.isoformat(), "count": counts.get(d.isoformat(), 0)} for d in clock.days(start, today)]
    return {"today": by_day[-1]["count"], "window": sum(d["count"] for d in by_day), "by_day": by_day}


def subscriptions(counts: metrics.SubscriptionCounts) -> dict:
    active = counts.active_by_tier()
    by_tier = [{"name": t.name, "display_name": t.display_name, "count": active.get(t.name, 0)} for t in counts.tiers]
    return {"total": sum(active.values()), "by_tier": by_tier}


def revenue(session, counts: metrics.SubscriptionCounts, start: date, today: date, include_test: bool) -> dict:
    mrr, paying, _ = counts.mrr_by_tier()
    by_day = metrics.net_collected_by_day(session, start, today, include_test)
    return {"mrr": mrr, "paying": paying, "by_day": by_day, "collected": sum(d["net"] for d in by_day)}


def dashboard(session, can: Callable[[str], bool], include_test: bool = False, today: date | None = None) -> Dashboard:
    start, today = window(today)
    since = day_start(start)
    cards = visible_cards(can)
    board = Dashboard(cards, include_test, start, today)
    names = {card.name for card in cards}
    credits = (summaries.daily_totals(session, start, today, include_test)
               if names & {"credits", "top_models"} else None)
    counts = metrics.subscription_counts(session, include_test) if names & {"subscriptions", "revenue"} else None
    compute = {
        "new_users": lambda: new_users(session, start, today, include_test),
        "subscriptions": lambda: subscriptions(counts),
        "revenue": lambda: revenue(session, counts, start, today, include_test),
        "failed_payments": lambda: {"count": dunning.failed_count(session, include_test)},
        "credits": lambda: {"issued": credits.issued, "spent": credits.spent, "by_day": credits.by_day},
        "top_models": lambda: {"models": credits.top_models()},
        "licenses": lambda: {"activations": activations.activations_since(session, since, include_test)},
        "coupons": lambda: {"redemptions": redemption.successful_since(session, since, include_test)},
        "fraud": lambda: {"open": fraud.open_count(session, include_test)},
    }
    for card in cards:
        board.figures[card.name] = compute[card.name]()
    return board
