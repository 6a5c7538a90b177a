"""Balances: reading them, deducting credits, allocating them, caps and tiers.

A deduction is one conditional UPDATE ... RETURNING on the user's balance row: it spends
subscription credits first, then bonus credits, refuses to go below zero or past the monthly
cap, and resets the month-to-date counters lazily when the month has turned. The ledger rows
go in the same transaction; the caller commits (with its idempotency record, for the API).
Pricing and charging an LLM request is metering.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import case, insert, or_, select, update

from app.core import audit, clock, testmode
from app.core.errors import DomainError, NotFound
from app.credits.formula import MAX_TOKENS_PER_REQUEST
from app.credits.models import (ALLOCATION_SOURCES, CLIENT_DEDUCTION_TYPES, DEDUCTION_TYPES, SUBSCRIPTION_SOURCES,
                                TIERS, CreditAllocation, CreditBalance, CreditDeduction)
from app.users.models import User

B = CreditBalance.__table__
MAX_CREDITS = 10**12
TWELVE_PLACES = Decimal("0.000000000001")


class InsufficientCredits(DomainError):
    status = 402

    def __init__(self, needed: int, available: int):
        super().__init__("insufficient_credits",
                         f"This needs {needed} credits and the balance is {available}.", None)


class MonthlyCapExceeded(DomainError):
    status = 402

    def __init__(self, cap: int, spent: int, needed: int):
        super().__init__("monthly_cap_exceeded",
                         f"This needs {needed} credits; {spent} of the monthly cap of {cap} are spent.", None)


@dataclass(frozen=True)
class BalanceView:
    subscription_credits: int
    bonus_credits: int
    monthly_cap: int | None
    mtd_credits: int
    mtd_tokens: int
    tier: str = "free"

    @property
    def total(self) -> int:
        return self.subscription_credits + self.bonus_credits

    def as_dict(self) -> dict:
        return {"subscription_credits": self.subscription_credits, "bonus_credits": self.bonus_credits,
                "total": self.total, "monthly_cap": self.monthly_cap,
                "month_to_date": {"credits": self.mtd_credits, "tokens": self.mtd_tokens}}


EMPTY = BalanceView(0, 0, None, 0, 0)


def month_start(at: datetime) -> date:
    return date(at.year, at.month, 1)


def _view(row, month: date, tier: str | None = None) -> BalanceView:
    same = row.mtd_month == month
    return BalanceView(row.subscription_credits, row.bonus_credits, row.monthly_cap,
                       row.mtd_credits if same else 0, row.mtd_tokens if same else 0,
                       tier or getattr(row, "tier", "free"))


def get_balance(session, user_id: int, at: datetime | None = None) -> BalanceView:
    row = session.execute(select(B).where(B.c.user_id == user_id)).first()
    return EMPTY if row is None else _view(row, month_start(at or clock.now()))


def tier_of(session, user_id: int) -> str:
    return session.scalar(select(B.c.tier).where(B.c.user_id == user_id)) or "free"


# ---- validation shared by the API, the screens and the calculator ---------------------------

def check_tokens(value, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError("invalid_tokens", f"{field_name} must be a whole number.", field_name)
    if not 0 <= value <= MAX_TOKENS_PER_REQUEST:
        raise DomainError("invalid_tokens", f"{field_name} must be from 0 to {MAX_TOKENS_PER_REQUEST:,}.", field_name)
    return value


def check_amount(value, field_name: str = "amount") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError("invalid_amount", "Credits are whole numbers.", field_name)
    if not 1 <= value <= MAX_CREDITS:
        raise DomainError("invalid_amount", f"Give from 1 to {MAX_CREDITS:,} credits.", field_name)
    return value


def check_request_id(value) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 100 or not value.isprintable():
        raise DomainError("invalid_request_id", "request_id is a string of 1 to 100 printable characters.",
                          "request_id")
    return value.strip()


# ---- the hot path ---------------------------------------------------------------------------

def _deduct_stmt(user_id: int, amount: int, tokens: int, month: date, at: datetime, toward_cap: bool):
    same_month = B.c.mtd_month == month
    mtd_credits = case((same_month, B.c.mtd_credits), else_=0)
    mtd_tokens = case((same_month, B.c.mtd_tokens), else_=0)
    from_subscription = case((B.c.subscription_credits >= amount, amount), else_=B.c.subscription_credits)
    stmt = update(B).where(B.c.user_id == user_id, B.c.subscription_credits + B.c.bonus_credits >= amount)
    if toward_cap:
        stmt = stmt.where(or_(B.c.monthly_cap.is_(None), mtd_credits + amount <= B.c.monthly_cap))
    return stmt.values(
        subscription_credits=B.c.subscription_credits - from_subscription,
        bonus_credits=B.c.bonus_credits - (amount - from_subscription),
        mtd_month=month,
        mtd_credits=mtd_credits + (amount if toward_cap else 0),
        mtd_tokens=mtd_tokens + tokens,
        updated_at=at,
    ).returning(B.c.subscription_credits, B.c.bonus_credits, B.c.monthly_cap, B.c.mtd_month, B.c.mtd_credits,
                B.c.mtd_tokens, B.c.tier, B.c.is_test)


def _refusal(row, amount: int, month: date) -> DomainError:
    """Why the conditional UPDATE matched nothing, from the row as it stands."""
    if row is None or row.subscription_credits + row.bonus_credits < amount:
        return InsufficientCredits(amount, 0 if row is None else row.subscription_credits + row.bonus_credits)
    spent = row.mtd_credits if row.mtd_month == month else 0
    return MonthlyCapExceeded(row.monthly_cap, spent, amount)


def _apply(session, user_id: int, amount: int, tokens: int, at: datetime, toward_cap: bool = True, row=None):
    """Run the conditional UPDATE; raise the precise refusal when it matches nothing."""
    month = month_start(at)
    new = session.execute(_deduct_stmt(user_id, amount, tokens, month, at, toward_cap)).first()
    if new is None:
        if row is None:
            row = session.execute(select(B).where(B.c.user_id == user_id)).first()
        raise _refusal(row, amount, month)
    return new


def _ledger_is_test(row) -> bool:
    return testmode.active() or bool(row is not None and row.is_test)


def deduct(session, user_id: int, amount: int, deduction_type: str, related_usage_id: str | None = None,
           at: datetime | None = None, actor=None, reason: str | None = None, toward_cap: bool = True,
           allowed_types=CLIENT_DEDUCTION_TYPES) -> tuple[int, BalanceView]:
    """Take a number of credits (no tokens): client deductions, staff corrections, expirations."""
    check_amount(amount)
    if deduction_type not in allowed_types:
        raise DomainError("invalid_deduction_type", f"Pick one of: {', '.join(allowed_types)}.", "deduction_type")
    if related_usage_id is not None and (not isinstance(related_usage_id, str) or len(related_usage_id) > 100):
        raise DomainError("invalid_related_usage_id", "related_usage_id is a string of up to 100 characters.",
                          "related_usage_id")
    at = at or clock.now()
    new = _apply(session, user_id, amount, 0, at, toward_cap=toward_cap)
    view = _view(new, month_start(at))
    deduction_id = session.execute(insert(CreditDeduction.__table__).values(
        user_id=user_id, amount=amount, deduction_type=deduction_type, related_usage_id=related_usage_id,
        reason=reason, actor_id=getattr(actor, "id", None), balance_after=view.total,
        is_test=_ledger_is_test(new), created_at=at).returning(CreditDeduction.__table__.c.id)).scalar_one()
    return deduction_id, view



def revoke_bonus(session, user_id: int, amount: int, *, reason: str, actor=None,
                 at: datetime | None = None) -> tuple[int, BalanceView]:
    """Take back up to `amount` bonus credits that are still unspent (a reversed coupon):
    never subscription credits, never below zero. Returns how many went, with the balance."""
    check_amount(amount)
    at = at or clock.now()
    row = session.execute(select(B).where(B.c.user_id == user_id).with_for_update()).first()
    taken = min(amount, row.bonus_credits) if row is not None else 0
    if taken == 0:
        return 0, EMPTY if row is None else _view(row, month_start(at))
    new = session.execute(update(B).where(B.c.user_id == user_id, B.c.bonus_credits >= taken)
                          .values(bonus_credits=B.c.bonus_credits - taken, updated_at=at)
                          .returning(B)).first()
    view = _view(new, month_start(at))
    session.execute(insert(CreditDeduction.__table__).values(
        user_id=user_id, amount=taken, deduction_type="coupon_reversal", reason=reason,
        actor_id=getattr(actor, "id", None), balance_after=view.total, is_test=_ledger_is_test(new), created_at=at))
    return taken, view

# ---- allocations and settings ---------------------------------------------------------------

def _upsert(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(B)


def _user(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("user", "user_id")
    return user


def _default_tier(user: User) -> str:
    """A new balance row's tier: a test account's requested tier, else free (billing sets it later)."""
    tier = getattr(user, "test_tier", None)
    return tier if tier in TIERS else "free"


def ensure_balance(session, user_id: int, tier: str | None = None, at: datetime | None = None) -> None:
    """Create the user's balance row if missing (is_test follows the user)."""
    user = _user(session, user_id)
    at = at or clock.now()
    stmt = _upsert(session).values(user_id=user_id, tier=tier or _default_tier(user), subscription_credits=0,
                                   bonus_credits=0, mtd_month=month_start(at), mtd_credits=0, mtd_tokens=0,
                                   is_test=user.is_test, created_at=at, updated_at=at)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))


def allocate(session, user_id: int, amount: int, source: str, *, actor=None, reason: str = "",
             expires_at: datetime | None = None, period_start: datetime | None = None,
             period_end: datetime | None = None, grant_request_id: int | None = None,
             at: datetime | None = None) -> tuple[int, BalanceView]:
    """Add credits to the subscription or bonus bucket, with the allocation ledger row."""
    check_amount(amount)
    if source not in ALLOCATION_SOURCES:
        raise DomainError("invalid_source", f"Pick one of: {', '.join(ALLOCATION_SOURCES)}.", "source")
    at = at or clock.now()
    if expires_at is not None and expires_at <= at:
        raise DomainError("invalid_expiry", "The expiry must be in the future.", "expires_at")
    user = _user(session, user_id)
    bucket = "subscription" if source in SUBSCRIPTION_SOURCES else "bonus"
    column = "subscription_credits" if bucket == "subscription" else "bonus_credits"
    fresh = {"subscription_credits": 0, "bonus_credits": 0, column: amount}
    stmt = _upsert(session).values(user_id=user_id, tier=_default_tier(user), mtd_month=month_start(at),
                                   mtd_credits=0, mtd_tokens=0, is_test=user.is_test, created_at=at, updated_at=at,
                                   **fresh)
    stmt = stmt.on_conflict_do_update(index_elements=["user_id"],
                                      set_={column: B.c[column] + amount, "updated_at": at})
    new = session.execute(stmt.returning(B)).first()
    view = _view(new, month_start(at))
    allocation_id = session.execute(insert(CreditAllocation.__table__).values(
        user_id=user_id, amount=amount, source=source, bucket=bucket, period_start=period_start,
        period_end=period_end, expires_at=expires_at, reason=reason or "", actor_id=getattr(actor, "id", None),
        grant_request_id=grant_request_id, balance_after=view.total,
        is_test=testmode.active() or user.is_test, created_at=at).returning(CreditAllocation.__table__.c.id)
    ).scalar_one()
    return allocation_id, view


def allocate_period(session, user_id: int, amount: int, max_rollover: int, period_start: datetime,
                    period_end: datetime, at: datetime | None = None, actor=None) -> BalanceView:
    """A new billing period: unspent subscription credits lapse except up to max_rollover, which
    carry over, then the period's allocation lands. Every step is a ledger row, so the ledgers
    always add up to the balance. Billing calls this each period (seed 001 scenario 1)."""
    at = at or clock.now()
    ensure_balance(session, user_id, at=at)
    left = session.execute(select(B.c.subscription_credits).where(B.c.user_id == user_id)
                           .with_for_update()).scalar_one()
    carried = min(left, max(0, max_rollover))
    if left:
        deduct(session, user_id, left, "expiration", at=at, actor=actor, toward_cap=False,
               reason="Subscription credits of the previous period lapse", allowed_types=DEDUCTION_TYPES)
    if carried:
        allocate(session, user_id, carried, "rollover", actor=actor, reason="Rolled over from the previous period",
                 period_start=period_start, period_end=period_end, at=at)
    if amount <= 0:  # a tier without monthly credits (perpetual/BYOK): the lapse is the whole change
        return get_balance(session, user_id, at)
    _, view = allocate(session, user_id, amount, "monthly_allocation", actor=actor, period_start=period_start,
                       period_end=period_end, reason="Period allocation", at=at)
    return view


def set_tier(session, user_id: int, tier: str, actor=None) -> None:
    """The pricing tier used for margins; billing and licensing set it when plans change."""
    if tier not in TIERS:
        raise DomainError("invalid_tier", f"Pick one of: {', '.join(TIERS)}.", "tier")
    ensure_balance(session, user_id)
    old = session.execute(select(B.c.tier).where(B.c.user_id == user_id)).scalar_one()
    if old != tier:
        session.execute(update(B).where(B.c.user_id == user_id).values(tier=tier, updated_at=clock.now()))
        audit.record(session, "credits.tier_changed", actor=actor, target=_user(session, user_id),
                     before={"tier": old}, after={"tier": tier})


def set_monthly_cap(session, user_id: int, cap, actor=None) -> BalanceView:
    """The user's own monthly spending cap in credits (None removes it)."""
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_CREDITS):
        raise DomainError("invalid_monthly_cap", f"monthly_cap is a whole number of credits from 0 to "
                          f"{MAX_CREDITS:,}, or null.", "monthly_cap")
    user = _user(session, user_id)
    ensure_balance(session, user_id)
    old = session.execute(select(B.c.monthly_cap).where(B.c.user_id == user_id)).scalar_one()
    session.execute(update(B).where(B.c.user_id == user_id).values(monthly_cap=cap, updated_at=clock.now()))
    if old != cap:
        audit.record(session, "credits.monthly_cap_set", actor=actor, target=user, before={"monthly_cap": old},
                     after={"monthly_cap": cap})
    return get_balance(session, user_id)
