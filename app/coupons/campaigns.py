"""Campaigns: create, edit (budget changes need campaigns.set_budget), and the campaign figures.

A campaign's `spent` only moves through one conditional UPDATE (see redemption.py), so it
is exact under concurrency; staff cannot set it, and cannot set a budget below it.
Figures count production traffic only unless the viewer asks for test data too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import case, func, select

from app.core import audit
from app.core.errors import DomainError, NotFound, PermissionDenied
from app.coupons import inputs
from app.coupons.models import CAMPAIGN_TYPES, TIERS, Campaign, Coupon, FraudDetection, Redemption


def get(session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    return campaign


def parse(raw: dict, *, existing: Campaign | None = None) -> dict:
    """Validate a campaign's fields; raises DomainError naming the field."""
    values = {
        "name": inputs.text(raw.get("name"), "name", max_len=120),
        "campaign_type": inputs.choice(raw.get("campaign_type"), CAMPAIGN_TYPES, "campaign_type"),
        "starts_at": inputs.moment(raw.get("starts_at"), "starts_at"),
        "ends_at": inputs.moment(raw.get("ends_at"), "ends_at"),
        "budget_limit": inputs.amount(raw.get("budget_limit"), "budget_limit"),
        "target_tier": inputs.choice(raw.get("target_tier"), TIERS, "target_tier", required=False),
        "is_active": inputs.flag(raw.get("is_active", True)),
        "description": inputs.text(raw.get("description"), "description", required=False, max_len=2000),
    }
    if values["ends_at"] <= values["starts_at"]:
        raise DomainError("window_reversed", "The end must be after the start.", "ends_at")
    if existing is not None:
        floor = max(existing.spent, existing.test_spent)
        if values["budget_limit"] < floor:
            raise DomainError("budget_below_spent",
                              f"The budget cannot be below what the campaign has spent ({floor}).", "budget_limit")
    return values


def _unique_name(session, name: str, campaign_id: int | None = None) -> None:
    clash = session.scalar(select(Campaign.id).where(func.lower(Campaign.name) == name.lower()))
    if clash is not None and clash != campaign_id:
        raise DomainError("name_taken", "Another campaign has this name.", "name")


def create(session, actor, raw: dict) -> Campaign:
    values = parse(raw)
    _unique_name(session, values["name"])
    campaign = Campaign(**values, created_by_id=getattr(actor, "id", None))
    session.add(campaign)
    session.flush()
    audit.record(session, "campaigns.created", actor=actor, target=campaign, after=campaign.snapshot())
    return campaign


def update(session, actor, campaign: Campaign, raw: dict, *, may_set_budget: bool) -> Campaign:
    values = parse(raw, existing=campaign)
    _unique_name(session, values["name"], campaign.id)
    if values["budget_limit"] != campaign.budget_limit and not may_set_budget:
        raise PermissionDenied("Changing a campaign's budget needs the campaigns.set_budget permission.",
                               permission="campaigns.set_budget")
    before = campaign.snapshot()
    for key, value in values.items():
        setattr(campaign, key, value)
    session.flush()
    audit.record(session, "campaigns.updated", actor=actor, target=campaign, before=before,
                 after=campaign.snapshot(), reason=(raw.get("reason") or None))
    return campaign


def campaigns(session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.starts_at.desc(), Campaign.id.desc())))


@dataclass
class CampaignFigures:
    spent: Decimal
    budget_limit: Decimal
    remaining: Decimal
    spent_percent: Decimal
    by_status: dict[str, int]
    users_attempted: int
    users_converted: int
    conversion_percent: Decimal
    discount_total: Decimal
    credits_total: int
    daily: list[tuple[date, int]] = field(default_factory=list)
    fraud_by_type: dict[str, int] = field(default_factory=dict)
    fraud_open: int = 0
    recent_fraud: list[FraudDetection] = field(default_factory=list)


def _day(session, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def figures(session, campaign: Campaign, include_test: bool = False) -> CampaignFigures:
    """Spend against budget, redemptions per day, conversion and fraud flags of one campaign."""
    lane = [Redemption.campaign_id == campaign.id]
    if not include_test:
        lane.append(Redemption.is_test.is_(False))
    by_status = dict(session.execute(select(Redemption.status, func.count()).where(*lane)
                                     .group_by(Redemption.status)).all())
    attempted, converted, discount, credits = session.execute(select(
        func.count(func.distinct(Redemption.user_id)),
        func.count(func.distinct(case((Redemption.status == "success", Redemption.user_id)))),
        func.coalesce(func.sum(case((Redemption.status == "success", Redemption.discount_amount))), 0),
        func.coalesce(func.sum(case((Redemption.status == "success", Redemption.credits_granted))), 0),
    ).where(*lane)).one()
    day = _day(session, Redemption.created_at)
    daily = [(d if isinstance(d, date) else date.fromisoformat(str(d)), n) for d, n in session.execute(
        select(day, func.count()).where(*lane, Redemption.status == "success").group_by(day).order_by(day))]
    fraud_lane = [FraudDetection.coupon_id.in_(select(Coupon.id).where(Coupon.campaign_id == campaign.id))]
    if not include_test:
        fraud_lane.append(FraudDetection.is_test.is_(False))
    fraud_by_type = dict(session.execute(select(FraudDetection.detection_type, func.count()).where(*fraud_lane)
                                         .group_by(FraudDetection.detection_type)).all())
    fraud_open = session.scalar(select(func.count()).select_from(FraudDetection)
                                .where(*fraud_lane, FraudDetection.is_flagged.is_(True),
                                       FraudDetection.reviewed_at.is_(None))) or 0
    recent = list(session.scalars(select(FraudDetection).where(*fraud_lane)
                                  .order_by(FraudDetection.created_at.desc()).limit(10)))
    spent = campaign.spent + (campaign.test_spent if include_test else 0)
    budget = campaign.budget_limit
    return CampaignFigures(
        spent=spent, budget_limit=budget, remaining=max(budget - spent, Decimal("0.00")),
        spent_percent=(spent * 100 / budget).quantize(Decimal("0.1")) if budget else Decimal("0.0"),
        by_status=by_status, users_attempted=attempted, users_converted=converted,
        conversion_percent=(Decimal(converted) * 100 / attempted).quantize(Decimal("0.1")) if attempted
        else Decimal("0.0"),
        discount_total=Decimal(discount).quantize(Decimal("0.01")), credits_total=int(credits), daily=daily,
        fraud_by_type=fraud_by_type, fraud_open=fraud_open, recent_fraud=recent)


def is_running(campaign: Campaign, at: datetime) -> bool:
    return campaign.is_active and campaign.starts_at <= at <= campaign.ends_at
