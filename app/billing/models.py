"""Billing tables: tiers, subscriptions, proration events, invoices, payments, dunning,
refund approvals, credit packs and received Stripe events.

The app is the system of record for all of these; Stripe ids are kept only to reconcile
with the payment rail.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin, Money, TimestampMixin

TIER_NAMES = ("free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual")
STATUSES = ("active", "trial", "past_due", "grace_period", "cancelled", "paused")
BILLING_CYCLES = ("monthly", "annual")
INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")
PAYMENT_STATUSES = ("pending", "processing", "succeeded", "failed", "error", "canceled")
CHANGE_TYPES = ("upgrade", "downgrade", "cancellation", "reactivation")
PRORATION_STATUSES = ("pending", "applied", "failed", "reversed")


class SubscriptionTier(TimestampMixin, Base):
    """A plan: price, monthly credits, rollover cap and feature entitlements (JSON)."""

    __tablename__ = "subscription_tiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    monthly_price: Mapped[Decimal] = Money(default=Decimal("0.00"))
    annual_price: Mapped[Decimal | None] = Money()
    monthly_credits: Mapped[int] = mapped_column(Integer, default=0)
    max_rollover: Mapped[int] = mapped_column(Integer, default=0)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)

    @property
    def audit_label(self) -> str:
        return self.name

    def price_for(self, cycle: str) -> Decimal:
        if cycle == "annual":
            return self.annual_price if self.annual_price is not None else self.monthly_price * 12
        return self.monthly_price

    def snapshot(self) -> dict:
        return {"display_name": self.display_name, "monthly_price": str(self.monthly_price),
                "annual_price": None if self.annual_price is None else str(self.annual_price),
                "monthly_credits": self.monthly_credits, "max_rollover": self.max_rollover,
                "features": self.features, "rank": self.rank, "is_active": self.is_active}


class Subscription(IsTestMixin, TimestampMixin, Base):
    __tablename__ = "subscriptions"
    # At most one live (not cancelled) subscription per user, even under concurrent creates.
    __table_args__ = (Index("uq_subscriptions_live_user", "user_id", unique=True,
                            postgresql_where=text("status <> 'cancelled'"), sqlite_where=text("status <> 'cancelled'")),
                      # MRR and active subscriptions per tier count from the index alone.
                      Index("ix_subscriptions_counts", "status", "tier_id", "billing_cycle", "is_test"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tier_id: Mapped[int] = mapped_column(ForeignKey("subscription_tiers.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    billing_cycle: Mapped[str] = mapped_column(String(10), default="monthly")
    # The period is [start, end] with end the last second of its last day (seed 001's
    # 2025-11-01T00:00:00Z .. 2025-11-30T23:59:59Z), so that day counts match the seed.
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime] = mapped_column(index=True)
    billing_anchor_day: Mapped[int] = mapped_column(Integer, default=1)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancelled_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    grace_until: Mapped[datetime | None] = mapped_column(index=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    default_payment_method_id: Mapped[str | None] = mapped_column(String(64))

    tier: Mapped[SubscriptionTier] = relationship(lazy="joined")
    user = relationship("User", lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"subscription {self.id} ({self.user.email if self.user else self.user_id})"

    def snapshot(self) -> dict:
        return {"tier": self.tier.name if self.tier else None, "status": self.status,
                "billing_cycle": self.billing_cycle,
                "current_period_start": self.current_period_start.isoformat(),
                "current_period_end": self.current_period_end.isoformat(),
                "cancel_at_period_end": self.cancel_at_period_end}


class ProrationEvent(IsTestMixin, Base):
    __tablename__ = "proration_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    from_tier: Mapped[str] = mapped_column(String(40))
    to_tier: Mapped[str | None] = mapped_column(String(40))
    change_type: Mapped[str] = mapped_column(String(20))
    days_remaining: Mapped[int] = mapped_column(Integer)
    days_in_cycle: Mapped[int] = mapped_column(Integer)
    unused_credit_value: Mapped[Decimal] = Money()
    new_tier_prorated_cost: Mapped[Decimal] = Money()
    net_charge: Mapped[Decimal] = Money()
    credits_granted: Mapped[int] = mapped_column(Integer, default=0)
    effective_date: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    failure_message: Mapped[str | None] = mapped_column(String(255))


class Invoice(IsTestMixin, TimestampMixin, Base):
    """One per (subscription, period) for renewals, one per proration, one per pack sale."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("subscription_id", "period_key", name="uq_invoices_subscription_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="period")  # period | proration | credit_pack
    # "2025-11-01" for a period invoice: the idempotency key of renewal; NULL otherwise.
    period_key: Mapped[str | None] = mapped_column(String(40))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    subtotal: Mapped[Decimal] = Money(default=Decimal("0.00"))
    # Filled by the coupons domain; NULL means no discount was considered.
    discount: Mapped[Decimal | None] = Money()
    total: Mapped[Decimal] = Money(default=Decimal("0.00"))
    amount_paid: Mapped[Decimal] = Money(default=Decimal("0.00"))
    due_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    # Dunning state of an open invoice.
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime | None]
    next_retry_at: Mapped[datetime | None] = mapped_column(index=True)
    hard_declined: Mapped[bool] = mapped_column(default=False)

    lines: Mapped[list["InvoiceLine"]] = relationship(order_by="InvoiceLine.id", cascade="all, delete-orphan")

    @property
    def number(self) -> str:
        return f"INV-{self.id:06d}"

    @property
    def audit_label(self) -> str:
        return self.number


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_amount: Mapped[Decimal] = Money()
    amount: Mapped[Decimal] = Money()


class PaymentTransaction(IsTestMixin, TimestampMixin, Base):
    """Each Stripe PaymentIntent (kind charge) or refund (kind refund) we ask for."""

    __tablename__ = "payment_transactions"
    # Money collected per day (the dashboard, revenue figures): succeeded charges and refunds
    # of a window of days, read from the index alone.
    __table_args__ = (Index("ix_payment_transactions_status_created", "status", "created_at", "kind", "is_test",
                            "amount"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="charge")
    amount: Mapped[Decimal] = Money()
    refunded_amount: Mapped[Decimal] = Money(default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(64), index=True)  # global search
    stripe_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id", ondelete="SET NULL"))
    failure_code: Mapped[str | None] = mapped_column(String(60))
    decline_code: Mapped[str | None] = mapped_column(String(60))
    failure_message: Mapped[str | None] = mapped_column(String(255))
    last_event_at: Mapped[int | None] = mapped_column(BigId)  # Stripe event `created` last applied
    initiated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.refunded_amount if self.kind == "charge" and self.status == "succeeded" else Decimal("0.00")

    @property
    def audit_label(self) -> str:
        return f"payment {self.id}"


class RevenueDailyTotal(Base):
    """Production money collected per UTC day (succeeded charges, succeeded refunds), built by
    the nightly job for the last few days so that late webhooks land. Production only: test
    payments are read live (they are few, and the test-data cleanup deletes them)."""

    __tablename__ = "revenue_daily_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    charges: Mapped[Decimal] = Money()
    refunds: Mapped[Decimal] = Money()
    built_at: Mapped[datetime] = mapped_column(default=clock.now)


class DunningAttempt(IsTestMixin, Base):
    __tablename__ = "dunning_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id", ondelete="SET NULL"))
    attempt_number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(20))  # renewal | scheduled | manual | card_update | webhook
    result: Mapped[str] = mapped_column(String(20))  # failed | hard_decline | succeeded | error
    failure_code: Mapped[str | None] = mapped_column(String(60))
    next_retry_at: Mapped[datetime | None]


class RefundRequest(IsTestMixin, Base):
    """A refund above REFUND_APPROVAL_THRESHOLD waits here for another admin's approval."""

    __tablename__ = "refund_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment_transactions.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = Money()
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|approved|rejected|failed
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    refund_payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id", ondelete="SET NULL"))

    requested_by = relationship("User", foreign_keys=[requested_by_id], lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"refund request {self.id}"


class CreditPack(TimestampMixin, Base):
    """Seed 004's token packages: a number of credits sold once at a price."""

    __tablename__ = "credit_packs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    credits: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = Money()
    is_active: Mapped[bool] = mapped_column(default=True)

    @property
    def audit_label(self) -> str:
        return self.name

    def snapshot(self) -> dict:
        return {"name": self.name, "credits": self.credits, "price": str(self.price), "is_active": self.is_active}


class CreditPackPurchase(IsTestMixin, TimestampMixin, Base):
    __tablename__ = "credit_pack_purchases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("credit_packs.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    credits: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = Money()
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|succeeded|failed
    credits_granted_at: Mapped[datetime | None]
    sold_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    pack: Mapped[CreditPack] = relationship(lazy="joined")


class StripeEvent(Base):
    """Every verified webhook, stored by its event id so that a redelivery is a no-op."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    type: Mapped[str] = mapped_column(String(80), index=True)
    created: Mapped[int] = mapped_column(BigId)
    livemode: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="received", index=True)  # received|processed|ignored|deferred|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    processed_at: Mapped[datetime | None]


class PeriodAllocation(IsTestMixin, Base):
    """One row per (subscription, period) whose credits were allocated: the idempotency
    key of the allocation job, with what rolled over and what expired."""

    __tablename__ = "period_allocations"
    __table_args__ = (UniqueConstraint("subscription_id", "period_start", name="uq_period_allocations_subscription_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tier: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    allocated: Mapped[int] = mapped_column(Integer)
    rolled_over: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
