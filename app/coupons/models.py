"""Coupon tables: campaigns, coupons, validation rules, redemptions, per-user uses, fraud detections.

Campaigns, coupons and rules are configuration made by staff (no is_test). What customers do
with them (redemptions, per-user counters, fraud detections) is traffic and carries is_test.
Limits are counters kept next to their limit so that one conditional UPDATE enforces each
one exactly under concurrency: `uses_count`/`test_uses_count` on coupons, `spent`/`test_spent`
on campaigns (test traffic has its own lane, so sandbox keys never use up production limits).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin, Money, TimestampMixin

CAMPAIGN_TYPES = ("seasonal", "win_back", "referral", "promotional", "early_bird")
COUPON_TYPES = ("percentage_discount", "fixed_amount_discount", "tier_specific_discount", "duration_bonus",
                "byok_migration")
DISCOUNT_TYPES = ("percentage", "fixed_amount", "credits", "months_free")
TIERS = ("free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual")
BILLING_CYCLES = ("monthly", "annual")
REDEMPTION_STATUSES = ("success", "failed", "reversed", "pending")
RULE_TYPES = ("first_time_user_only", "specific_email_domain", "minimum_credit_balance",
              "exclude_refunded_users", "require_payment_method")
DETECTION_TYPES = ("velocity_abuse", "ip_switching", "bot_pattern", "device_fingerprint_mismatch",
                   "stacking_abuse")
SEVERITIES = ("low", "medium", "high", "critical")
REVIEW_ACTIONS = ("dismissed", "confirmed", "suspended")


class Campaign(TimestampMixin, Base):
    __tablename__ = "coupon_campaigns"
    __table_args__ = (
        CheckConstraint("spent >= 0 AND spent <= budget_limit", name="spent_within_budget"),
        CheckConstraint("test_spent >= 0 AND test_spent <= budget_limit", name="test_spent_within_budget"),
        CheckConstraint("ends_at > starts_at", name="window_order"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    campaign_type: Mapped[str] = mapped_column(String(20), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    budget_limit: Mapped[Decimal] = Money()
    spent: Mapped[Decimal] = Money(default=Decimal("0.00"))
    test_spent: Mapped[Decimal] = Money(default=Decimal("0.00"))
    target_tier: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(Text, default="")

    coupons: Mapped[list["Coupon"]] = relationship(back_populates="campaign", order_by="Coupon.code")

    @property
    def audit_label(self) -> str:
        return self.name

    @property
    def remaining(self) -> Decimal:
        return self.budget_limit - self.spent

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "campaign_type": self.campaign_type, "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat(), "budget_limit": str(self.budget_limit),
                "spent": str(self.spent), "target_tier": self.target_tier, "is_active": self.is_active}


class Coupon(TimestampMixin, Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("code = upper(code)", name="code_upper"),
        CheckConstraint("uses_count >= 0 AND (max_uses IS NULL OR uses_count <= max_uses)", name="uses_within_max"),
        CheckConstraint("test_uses_count >= 0 AND (max_uses IS NULL OR test_uses_count <= max_uses)",
                        name="test_uses_within_max"),
        CheckConstraint("valid_until > valid_from", name="window_order"),
        CheckConstraint("discount_value > 0", name="positive_value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Stored upper-case; the unique index makes codes unique case-insensitively.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    coupon_type: Mapped[str] = mapped_column(String(30))
    discount_type: Mapped[str] = mapped_column(String(20))
    # Percent (0-100], dollars, credits or months, by discount_type.
    discount_value: Mapped[Decimal] = Money()
    max_uses: Mapped[int | None] = mapped_column(Integer)
    max_uses_per_user: Mapped[int | None] = mapped_column(Integer)
    uses_count: Mapped[int] = mapped_column(Integer, default=0)
    test_uses_count: Mapped[int] = mapped_column(Integer, default=0)
    min_purchase_amount: Mapped[Decimal] = Money(default=Decimal("0.00"))
    # Empty list = every tier / every cycle.
    tier_eligibility: Mapped[list[str]] = mapped_column(JSON, default=list)
    billing_cycles: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_campaigns.id", ondelete="RESTRICT"),
                                                    index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    is_stackable: Mapped[bool] = mapped_column(default=False)
    requires_licensed_device: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    campaign: Mapped[Campaign | None] = relationship(back_populates="coupons")
    rules: Mapped[list["ValidationRule"]] = relationship(back_populates="coupon", order_by="ValidationRule.id",
                                                         cascade="all, delete-orphan")

    @property
    def audit_label(self) -> str:
        return self.code

    def snapshot(self) -> dict[str, Any]:
        return {"code": self.code, "coupon_type": self.coupon_type, "discount_type": self.discount_type,
                "discount_value": str(self.discount_value), "max_uses": self.max_uses,
                "max_uses_per_user": self.max_uses_per_user, "min_purchase_amount": str(self.min_purchase_amount),
                "tier_eligibility": list(self.tier_eligibility or []), "billing_cycles": list(self.billing_cycles or []),
                "valid_from": self.valid_from.isoformat(), "valid_until": self.valid_until.isoformat(),
                "campaign_id": self.campaign_id, "is_active": self.is_active, "is_stackable": self.is_stackable,
                "requires_licensed_device": self.requires_licensed_device}


class ValidationRule(TimestampMixin, Base):
    __tablename__ = "coupon_validation_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"), index=True)
    rule_type: Mapped[str] = mapped_column(String(40))
    rule_value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)

    coupon: Mapped[Coupon] = relationship(back_populates="rules")

    @property
    def audit_label(self) -> str:
        return self.rule_type


class Redemption(IsTestMixin, Base):
    """One redemption attempt: success, failed (with its code), reversed or pending."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        Index("ix_coupon_redemptions_user_recent", "user_id", "created_at"),
        Index("ix_coupon_redemptions_ip_recent", "ip_address", "created_at"),
        Index("ix_coupon_redemptions_coupon_recent", "coupon_id", "created_at"),
        Index("ix_coupon_redemptions_status_at", "status", "created_at"),  # redemptions over a window of days
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_campaigns.id", ondelete="SET NULL"),
                                                    index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Billing rows; plain ids (no FK) so this migration does not depend on billing's.
    subscription_id: Mapped[int | None] = mapped_column(BigId, index=True)
    invoice_id: Mapped[int | None] = mapped_column(BigId, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    tier: Mapped[str | None] = mapped_column(String(20))
    billing_cycle: Mapped[str | None] = mapped_column(String(20))
    original_amount: Mapped[Decimal] = Money()
    discount_amount: Mapped[Decimal] = Money(default=Decimal("0.00"))
    final_amount: Mapped[Decimal] = Money()
    credits_granted: Mapped[int] = mapped_column(Integer, default=0)
    months_granted: Mapped[int] = mapped_column(Integer, default=0)
    # What this redemption took from its campaign's budget (given back on reversal).
    budget_cost: Mapped[Decimal] = Money(default=Decimal("0.00"))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    device_fingerprint: Mapped[str | None] = mapped_column(String(64))
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reversed_at: Mapped[datetime | None]
    reversed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    credits_clawed_back: Mapped[int] = mapped_column(Integer, default=0)

    coupon: Mapped[Coupon] = relationship()
    user = relationship("User", foreign_keys=[user_id])

    @property
    def audit_label(self) -> str:
        return f"redemption {self.id}"


class CouponUserUse(IsTestMixin, Base):
    """Per-user use counter: one row per (coupon, user), raised by a conditional upsert."""

    __tablename__ = "coupon_user_uses"

    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class FraudDetection(IsTestMixin, Base):
    __tablename__ = "coupon_fraud_detections"
    __table_args__ = (Index("ix_coupon_fraud_detections_queue", "is_flagged", "reviewed_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_redemptions.id", ondelete="SET NULL"),
                                                      index=True)
    detection_type: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    blocked: Mapped[bool] = mapped_column(default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    is_flagged: Mapped[bool] = mapped_column(default=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None]
    review_action: Mapped[str | None] = mapped_column(String(20))
    resolution: Mapped[str | None] = mapped_column(Text)

    coupon: Mapped[Coupon | None] = relationship()
    user = relationship("User", foreign_keys=[user_id])
    reviewer = relationship("User", foreign_keys=[reviewed_by_id])
    redemption: Mapped[Redemption | None] = relationship()

    @property
    def audit_label(self) -> str:
        return f"{self.detection_type} #{self.id}"
