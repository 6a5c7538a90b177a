"""Credits tables: providers, versioned prices and margins, balances, append-only ledgers,
daily summaries, grant approvals and BYOK vendor keys.

Prices and margin configurations are configuration, not per-person data: they carry no
is_test. Every row a person or a request creates (balances, ledgers, approvals, keys) does.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String,
                        Text, UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin, TimestampMixin

TIERS = ("free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual")
STRATEGIES = ("fixed_percentage", "tiered", "dynamic")
ALLOCATION_SOURCES = ("monthly_allocation", "promotional_bonus", "coupon", "purchase", "admin_grant", "rollover")
# Sources that fill the subscription bucket; every other source is bonus credit.
SUBSCRIPTION_SOURCES = ("monthly_allocation", "rollover")
# The four of seed 001, plus `expiration` for credits that lapse at a period reset and
# `coupon_reversal` for unspent coupon bonus credits taken back, so that the ledgers always
# add up to the balance.
DEDUCTION_TYPES = ("inference", "embedding", "fine_tuning", "custom", "expiration", "coupon_reversal")
CLIENT_DEDUCTION_TYPES = ("inference", "embedding", "fine_tuning", "custom")

PerMillion = Numeric(12, 6, asdecimal=True)
Percent = Numeric(5, 2, asdecimal=True)
# Per-request costs are exact: 6 decimals of price times tokens over a million needs 12.
Cost = Numeric(24, 12, asdecimal=True)
Credits = BigInteger()


def _people_index(table: str, column: str) -> Index:
    """Staff references are rare on ledger rows: index only the rows that have one, so deleting
    a (test) staff account finds them without the hot path maintaining an index of NULLs."""
    return Index(f"ix_{table}_{column}", column, postgresql_where=text(f"{column} IS NOT NULL"),
                 sqlite_where=text(f"{column} IS NOT NULL"))


def _test_rows_index(table: str) -> Index:
    """Hot ledgers index only their test rows (what cleanup deletes), not a boolean per row."""
    return Index(f"ix_{table}_test_rows", "id", postgresql_where=text("is_test"), sqlite_where=text("is_test"))


class Provider(TimestampMixin, Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_name: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    api_endpoint: Mapped[str] = mapped_column(String(255), default="")
    is_active: Mapped[bool] = mapped_column(default=True)

    @property
    def audit_label(self) -> str:
        return self.vendor_name


class ModelPrice(Base):
    """One price version of a model; a change adds a row effective from its date."""

    __tablename__ = "model_prices"
    __table_args__ = (
        UniqueConstraint("model_name", "effective_date", name="uq_model_prices_model_effective"),
        CheckConstraint("input_price_per_million >= 0 AND output_price_per_million >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    model_name: Mapped[str] = mapped_column(String(120), index=True)
    input_price_per_million: Mapped[Decimal] = mapped_column(PerMillion)
    output_price_per_million: Mapped[Decimal] = mapped_column(PerMillion)
    effective_date: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    provider: Mapped[Provider] = relationship(lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"{self.model_name} from {self.effective_date:%Y-%m-%d %H:%M}"


class MarginConfig(Base):
    """One margin version of a tier. brackets: [{"min_tokens": 0, "margin": "40.00"}, ...];
    vendor_adjustments: {"openai": "5.00"}; both as decimal strings, immutable once written."""

    __tablename__ = "margin_configs"
    __table_args__ = (UniqueConstraint("tier", "effective_date", name="uq_margin_configs_tier_effective"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tier: Mapped[str] = mapped_column(String(40), index=True)
    strategy: Mapped[str] = mapped_column(String(20))
    margin_percentage: Mapped[Decimal] = mapped_column(Percent)
    brackets: Mapped[Any | None] = mapped_column(JSON)
    vendor_adjustments: Mapped[Any | None] = mapped_column(JSON)
    effective_date: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def audit_label(self) -> str:
        return f"{self.tier} margin from {self.effective_date:%Y-%m-%d %H:%M}"


class MarginAudit(Base):
    """Seed 001's margin audit log: old, new, reason, who."""

    __tablename__ = "margin_audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tier: Mapped[str] = mapped_column(String(40), index=True)
    config_id: Mapped[int] = mapped_column(ForeignKey("margin_configs.id", ondelete="RESTRICT"))
    previous_config_id: Mapped[int | None] = mapped_column(ForeignKey("margin_configs.id", ondelete="RESTRICT"))
    old_strategy: Mapped[str | None] = mapped_column(String(20))
    new_strategy: Mapped[str] = mapped_column(String(20))
    old_margin: Mapped[Decimal | None] = mapped_column(Percent)
    new_margin: Mapped[Decimal] = mapped_column(Percent)
    old_details: Mapped[Any | None] = mapped_column(JSON)
    new_details: Mapped[Any | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_by_label: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class PricingState(Base):
    """One row whose token changes with every price, margin or provider change, so that each
    process can keep the pricing tables in memory and know, in the deduction's own query,
    whether they are still current."""

    __tablename__ = "pricing_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column(default=clock.now)


class CreditBalance(IsTestMixin, Base):
    """One row per user. tier is the pricing tier used for margins (set by billing/licensing)."""

    __tablename__ = "credit_balances"
    __table_args__ = (
        CheckConstraint("subscription_credits >= 0", name="subscription_non_negative"),
        CheckConstraint("bonus_credits >= 0", name="bonus_non_negative"),
        CheckConstraint("monthly_cap IS NULL OR monthly_cap >= 0", name="cap_non_negative"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(40), default="free")
    subscription_credits: Mapped[int] = mapped_column(Credits, default=0)
    bonus_credits: Mapped[int] = mapped_column(Credits, default=0)
    monthly_cap: Mapped[int | None] = mapped_column(Credits)
    mtd_month: Mapped[date] = mapped_column(Date)
    mtd_credits: Mapped[int] = mapped_column(Credits, default=0)
    mtd_tokens: Mapped[int] = mapped_column(Credits, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def total(self) -> int:
        return self.subscription_credits + self.bonus_credits


class CreditAllocation(IsTestMixin, Base):
    __tablename__ = "credit_allocations"
    __table_args__ = (
        _test_rows_index("credit_allocations"),
        _people_index("credit_allocations", "actor_id"),
        _people_index("credit_allocations", "grant_request_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_credit_allocations_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    is_test: Mapped[bool] = mapped_column(default=False, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(Credits)
    source: Mapped[str] = mapped_column(String(30))
    bucket: Mapped[str] = mapped_column(String(20))  # subscription | bonus
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    grant_request_id: Mapped[int | None] = mapped_column(ForeignKey("credit_grant_requests.id", ondelete="SET NULL"))
    balance_after: Mapped[int] = mapped_column(Credits)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class TokenUsage(IsTestMixin, Base):
    __tablename__ = "token_usage"
    __table_args__ = (
        _test_rows_index("token_usage"),
        UniqueConstraint("user_id", "request_id", name="uq_token_usage_user_request"),
        CheckConstraint("input_tokens >= 0 AND output_tokens >= 0 AND credits >= 0", name="non_negative"),
        Index("ix_token_usage_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    is_test: Mapped[bool] = mapped_column(default=False, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(100))
    model_price_id: Mapped[int] = mapped_column(ForeignKey("model_prices.id", ondelete="RESTRICT"))
    model_name: Mapped[str] = mapped_column(String(120))
    vendor_name: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(40))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    vendor_cost_usd: Mapped[Decimal] = mapped_column(Cost)
    margin_percentage: Mapped[Decimal] = mapped_column(Percent)
    customer_cost_usd: Mapped[Decimal] = mapped_column(Cost)
    credits: Mapped[int] = mapped_column(Credits)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class CreditDeduction(IsTestMixin, Base):
    __tablename__ = "credit_deductions"
    __table_args__ = (
        _test_rows_index("credit_deductions"),
        _people_index("credit_deductions", "actor_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_credit_deductions_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    is_test: Mapped[bool] = mapped_column(default=False, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(Credits)
    deduction_type: Mapped[str] = mapped_column(String(20))
    # No foreign key: the usage row is written by the same statement, the ledgers are append-only,
    # and a key would cost the hot path a lookup and a row lock per deduction (and a reverse
    # index to delete test usage).
    usage_id: Mapped[int | None] = mapped_column(BigId)
    related_usage_id: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    balance_after: Mapped[int] = mapped_column(Credits)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class CreditGrantRequest(IsTestMixin, Base):
    """A staff grant above the actor's cap waits here for an uncapped approver."""

    __tablename__ = "credit_grant_requests"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(Credits)
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    requested_by = relationship("User", foreign_keys=[requested_by_id], lazy="joined")
    decided_by = relationship("User", foreign_keys=[decided_by_id], lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"grant request #{self.id}"


class UsageSums:
    """A summary row's sums over its token usage rows."""

    request_count: Mapped[int] = mapped_column(Credits)
    input_tokens: Mapped[int] = mapped_column(Credits)
    output_tokens: Mapped[int] = mapped_column(Credits)
    vendor_cost_usd: Mapped[Decimal] = mapped_column(Cost)
    customer_cost_usd: Mapped[Decimal] = mapped_column(Cost)
    credits: Mapped[int] = mapped_column(Credits)


class TokenUsageDaily(UsageSums, Base):
    __tablename__ = "token_usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(120), primary_key=True)
    is_test: Mapped[bool] = mapped_column(primary_key=True)


Index("ix_token_usage_daily_user_day", TokenUsageDaily.user_id, TokenUsageDaily.day)


class CreditUsageDaily(Base):
    __tablename__ = "credit_usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    is_test: Mapped[bool] = mapped_column(primary_key=True)
    credits_allocated: Mapped[int] = mapped_column(Credits)
    credits_deducted: Mapped[int] = mapped_column(Credits)
    balance_eod: Mapped[int] = mapped_column(Credits)


Index("ix_credit_usage_daily_user_day", CreditUsageDaily.user_id, CreditUsageDaily.day)


# The per-user summaries' test rows by day: "include test data" adds them to the totals below.
for _summary in (TokenUsageDaily, CreditUsageDaily):
    Index(f"ix_{_summary.__tablename__}_test_day", _summary.day, postgresql_where=text("is_test"),
          sqlite_where=text("is_test"))


class CreditDailyTotal(Base):
    """Production credits issued and spent system-wide, one row per built day (the dashboard's
    figures at scale). Production only: test rows stay in the per-user summaries above, which
    the test-data cleanup deletes with their users, so no total here ever holds test data."""

    __tablename__ = "credit_daily_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    credits_allocated: Mapped[int] = mapped_column(Credits)
    credits_deducted: Mapped[int] = mapped_column(Credits)


class ModelDailyTotal(UsageSums, Base):
    """Production usage per model and day, system-wide (production only, as CreditDailyTotal)."""

    __tablename__ = "model_daily_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(120), primary_key=True)


class SummaryRun(Base):
    """When each day's summaries were last built; usage stats trust summaries only for these days."""

    __tablename__ = "credit_summary_runs"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    built_at: Mapped[datetime] = mapped_column(default=clock.now)
    token_rows: Mapped[int] = mapped_column(Integer, default=0)
    credit_rows: Mapped[int] = mapped_column(Integer, default=0)


class VendorKey(IsTestMixin, TimestampMixin, Base):
    """A BYOK user's own vendor API key, Fernet-encrypted; only the last four are ever shown."""

    __tablename__ = "vendor_keys"
    __table_args__ = (UniqueConstraint("user_id", "provider_id", name="uq_vendor_keys_user_provider"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    ciphertext: Mapped[str] = mapped_column(Text)
    last_four: Mapped[str] = mapped_column(String(4))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rotated_at: Mapped[datetime | None]

    provider: Mapped[Provider] = relationship(lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"{self.provider.vendor_name} key …{self.last_four}"
