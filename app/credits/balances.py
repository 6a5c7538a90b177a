"""Balances: reading them, deducting credits, allocating them, caps and tiers.

A deduction is the one charge statement of credits/charge.py (a conditional UPDATE ...
RETURNING of the user's balance row) followed by its ledger row, in the caller's transaction;
the caller commits. Pricing and charging an LLM request is metering.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import bindparam, insert, select, update

from app.core import audit, clock, pg, testmode
from app.core.errors import DomainError, NotFound
from app.credits import charge
from app.credits.charge import B, InsufficientCredits, MonthlyCapExceeded  # noqa: F401  (the refusals, re-exported)
from app.credits.formula import MAX_TOKENS_PER_REQUEST
from app.credits.models import (ALLOCATION_SOURCES, CLIENT_DEDUCTION_TYPES, DEDUCTION_TYPES, SUBSCRIPTION_SOURCES,
                                TIERS, CreditAllocation)
from app.users.models import User

MAX_CREDITS = 10**12
TWELVE_PLACES = Decimal("0.000000000001")


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

    @property
    def month_to_date(self) -> dict:
        return {"credits": self.mtd_credits, "tokens": self.mtd_tokens}


EMPTY = BalanceView(0, 0, None, 0, 0)


def month_start(at: datetime) -> date:
    return date(at.year, at.month, 1)


def _view(row, month: date, tier: str | None = None) -> BalanceView:
    same = row.mtd_month == month
    return BalanceView(row.subscription_credits, row.bonus_credits, row.monthly_cap,
                       row.mtd_credits if same else 0, row.mtd_tokens if same else 0,
                       tier or getattr(row, "tier", "free"))


# The owner's balance row. Run through pg.run: on the API request's own connection it makes no
# Session and skips SQLAlchemy's per-execution work (~20% of GET /credits/balance's CPU, py-spy).
BALANCE_ROW = select(B).where(B.c.user_id == bindparam("user_id"))


def get_balance(session, user_id: int, at: datetime | None = None) -> BalanceView:
    row = pg.run(session, BALANCE_ROW, {"user_id": user_id}).fetchone()
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


# ---- deductions: the one charge statement (credits/charge.py) --------------------------------

def charge_balance(session, user_id: int, amount: int, at: datetime, *, tokens: int = 0, toward_cap: bool = True,
                   row=None, missing_ok: bool = False):
    """Run the charge; the balance row after it. When it matches nothing, raise why (from `row`,
    the balance as the caller read it, or as it stands), or return None for a user without a
    balance when `missing_ok` (usage that costs nothing)."""
    month = month_start(at)
    new = session.execute(charge.CHARGE, charge.params(user_id, amount, at, month, tokens=tokens,
                                                       toward_cap=toward_cap)).first()
    if new is None:
        if row is None:
            row = session.execute(charge.LOCATE, {"user_id": user_id}).first()
        if row is None and missing_ok:
            return None
        raise charge.refusal(row, amount, month)
    return new


def record_deduction(session, user_id: int, amount: int, deduction_type: str, at: datetime, charged, *,
                     usage_id: int | None = None, related_usage_id: str | None = None, reason: str | None = None,
                     actor=None) -> int:
    """The deduction ledger row of a charge (`charged`: the balance row after it)."""
    return session.execute(charge.DEDUCTION_INSERT, {
        "user_id": user_id, "amount": amount, "deduction_type": deduction_type, "usage_id": usage_id,
        "related_usage_id": related_usage_id, "reason": reason, "actor_id": getattr(actor, "id", None),
        "balance_after": charged.subscription_credits + charged.bonus_credits, "owner_is_test": charged.is_test,
        "test_mode": testmode.active(), "at": at}).scalar_one()


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
    new = charge_balance(session, user_id, amount, at, toward_cap=toward_cap)
    deduction_id = record_deduction(session, user_id, amount, deduction_type, at, new,
                                    related_usage_id=related_usage_id, reason=reason, actor=actor)
    return deduction_id, _view(new, month_start(at))


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
    record_deduction(session, user_id, taken, "coupon_reversal", at, new, reason=reason, actor=actor)
    return taken, _view(new, month_start(at))

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
                                   is_test=testmode.is_test_row(user), created_at=at, updated_at=at)
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
                                   mtd_credits=0, mtd_tokens=0, is_test=testmode.is_test_row(user), created_at=at,
                                   updated_at=at, **fresh)
    stmt = stmt.on_conflict_do_update(index_elements=["user_id"],
                                      set_={column: B.c[column] + amount, "updated_at": at})
    new = session.execute(stmt.returning(B)).first()
    view = _view(new, month_start(at))
    allocation_id = session.execute(insert(CreditAllocation.__table__).values(
        user_id=user_id, amount=amount, source=source, bucket=bucket, period_start=period_start,
        period_end=period_end, expires_at=expires_at, reason=reason or "", actor_id=getattr(actor, "id", None),
        grant_request_id=grant_request_id, balance_after=view.total,
        is_test=testmode.is_test_row(user), created_at=at).returning(CreditAllocation.__table__.c.id)
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
