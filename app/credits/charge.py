"""The balance charge and the two ledger inserts, each written once as a SQLAlchemy Core
statement that every deduction path runs, on PostgreSQL and SQLite alike: the API's
calculate-and-deduct and deduct, staff deductions, lapsing credits, usage that costs nothing.

The charge is one conditional UPDATE ... RETURNING of the user's balance row. It spends
subscription credits first, then bonus credits, and matches nothing (so nothing is written)
when the balance is short, when a charge counted toward the cap would pass the monthly cap,
or when a test-mode actor aims at a production balance (DESIGN.md §3); the month-to-date
counters reset lazily when the month has turned. `refusal()` says which rule refused it.
The priced variant (metering's optimistic pricing) also checks what the price was computed
from: the pricing tables' token, the user's tier and the month-to-date token range of the
margin used.

The usage and deduction inserts take the charged balance either as bound values (statement by
statement) or as the charge's CTE (PostgreSQL's one-statement charge, CHARGE_AND_RECORD): the
same columns from the same expressions either way, and the same is_test rule (core/testmode.py).

Every value is a bound parameter, so each statement is built once at import and runs through
session.execute() or, compiled once, pg.run(); params() gives the charge's. (A coupon's reversal
takes back unspent bonus credits only, its own UPDATE in balances.revoke_bonus, with the same
deduction insert.)
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, bindparam, case, insert, or_, select, true, update

from app.core import testmode
from app.core.errors import DomainError
from app.core.testmode import TestModeViolation
from app.credits.models import CreditBalance, CreditDeduction, PricingState, TokenUsage

B, U, D = CreditBalance.__table__, TokenUsage.__table__, CreditDeduction.__table__
RETURNED = ("subscription_credits", "bonus_credits", "monthly_cap", "mtd_month", "mtd_credits", "mtd_tokens", "tier",
            "is_test")


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


def _p(name: str, column):
    return bindparam(name, type_=column.type)


# The UPDATE's own names (SQLAlchemy reserves a column's name for its SET clause); the inserts
# bind their columns' names, which the test-mode guard reads for the row's owner.
_USER, _TIER = "charge_user", "charge_tier"


def charge_statement(priced: bool = False):
    """The conditional UPDATE of user_id's balance by `amount` credits and `tokens` tokens."""
    amount, month = _p("amount", B.c.bonus_credits), _p("month", B.c.mtd_month)
    toward_cap, test_mode = bindparam("toward_cap", type_=Boolean), bindparam("test_mode", type_=Boolean)
    same_month = B.c.mtd_month == month
    mtd_credits = case((same_month, B.c.mtd_credits), else_=0)
    mtd_tokens = case((same_month, B.c.mtd_tokens), else_=0)
    from_subscription = case((B.c.subscription_credits >= amount, amount), else_=B.c.subscription_credits)
    stmt = update(B).where(
        B.c.user_id == _p(_USER, B.c.user_id),
        B.c.subscription_credits + B.c.bonus_credits >= amount,
        or_(~toward_cap, B.c.monthly_cap.is_(None), mtd_credits + amount <= B.c.monthly_cap),
        testmode.may_change_sql(B.c.is_test, test_mode),
    )
    if priced:
        state = PricingState.__table__
        token = select(state.c.token).where(state.c.id == 1).scalar_subquery()
        stmt = stmt.where(B.c.tier == _p(_TIER, B.c.tier),
                          token.is_not_distinct_from(_p("pricing_token", state.c.token)),
                          mtd_tokens >= _p("mtd_lo", B.c.mtd_tokens), mtd_tokens < _p("mtd_hi", B.c.mtd_tokens))
    return stmt.values(
        subscription_credits=B.c.subscription_credits - from_subscription,
        bonus_credits=B.c.bonus_credits - (amount - from_subscription),
        mtd_month=month,
        mtd_credits=mtd_credits + case((toward_cap, amount), else_=0),
        mtd_tokens=mtd_tokens + _p("tokens", B.c.mtd_tokens),
        updated_at=_p("at", B.c.updated_at),
    ).returning(*(B.c[c] for c in RETURNED))


def usage_insert(charged=None):
    """The usage row of a priced request (its is_test the charged balance's world)."""
    owner = charged.c.is_test if charged is not None else bindparam("owner_is_test", type_=Boolean)
    columns = {
        "user_id": _p("user_id", U.c.user_id), "request_id": _p("request_id", U.c.request_id),
        "model_price_id": _p("price_id", U.c.model_price_id), "model_name": _p("model", U.c.model_name),
        "vendor_name": _p("vendor", U.c.vendor_name), "tier": _p("tier", U.c.tier),
        "input_tokens": _p("input_tokens", U.c.input_tokens), "output_tokens": _p("output_tokens", U.c.output_tokens),
        "vendor_cost_usd": _p("vendor_cost", U.c.vendor_cost_usd),
        "margin_percentage": _p("margin", U.c.margin_percentage),
        "customer_cost_usd": _p("customer_cost", U.c.customer_cost_usd), "credits": _p("amount", U.c.credits),
        "is_test": testmode.is_test_sql(owner, bindparam("test_mode", type_=Boolean)),
        "created_at": _p("at", U.c.created_at),
    }
    return _insert(U, columns, charged).returning(U.c.id, U.c.is_test)


def deduction_insert(charged=None, usage=None):
    """The deduction row of a charge (its is_test the charged balance's world)."""
    if charged is not None:
        owner, balance_after = charged.c.is_test, charged.c.subscription_credits + charged.c.bonus_credits
    else:
        owner, balance_after = bindparam("owner_is_test", type_=Boolean), _p("balance_after", D.c.balance_after)
    columns = {
        "user_id": _p("user_id", D.c.user_id), "amount": _p("amount", D.c.amount),
        "deduction_type": _p("deduction_type", D.c.deduction_type),
        "usage_id": usage.c.id if usage is not None else _p("usage_id", D.c.usage_id),
        "related_usage_id": _p("related_usage_id", D.c.related_usage_id), "reason": _p("reason", D.c.reason),
        "actor_id": _p("actor_id", D.c.actor_id), "balance_after": balance_after,
        "is_test": testmode.is_test_sql(owner, bindparam("test_mode", type_=Boolean)),
        "created_at": _p("at", D.c.created_at),
    }
    return _insert(D, columns, charged, usage).returning(D.c.id)


def _insert(table, columns: dict, *sources):
    """INSERT INTO table (columns) SELECT expressions [FROM the charge's CTEs]."""
    select_ = select(*(expr.label(name) for name, expr in columns.items()))
    sources = [s for s in sources if s is not None]
    if sources:
        joined = sources[0]
        for other in sources[1:]:
            joined = joined.join(other, true())
        select_ = select_.select_from(joined)
    return insert(table).from_select(list(columns), select_)


CHARGE = charge_statement()
PRICED_CHARGE = charge_statement(priced=True)
USAGE_INSERT = usage_insert()
DEDUCTION_INSERT = deduction_insert()


def _charge_and_record():
    """PostgreSQL: the priced charge and both ledger inserts in one statement (data-modifying CTEs)."""
    charged = PRICED_CHARGE.cte("charged")
    used = usage_insert(charged).cte("used")
    deducted = deduction_insert(charged, used).cte("deducted")
    return (select(*charged.c, used.c.id.label("usage_id")).select_from(charged.join(used, true()))
            .add_cte(deducted))


CHARGE_AND_RECORD = _charge_and_record()
LOCATE = select(*(B.c[c] for c in RETURNED)).where(B.c.user_id == bindparam("user_id"))


def params(user_id: int, amount: int, at: datetime, month: date, *, tokens: int = 0, toward_cap: bool = True,
           tier: str | None = None, **more) -> dict:
    """The bound values of the charge (`more`: the priced charge's pricing_token, mtd_lo and
    mtd_hi; with CHARGE_AND_RECORD, the ledger rows' own values). Never a column's name: on an
    UPDATE, SQLAlchemy would SET that column from it."""
    return {_USER: user_id, "amount": amount, "tokens": tokens, "toward_cap": toward_cap, "month": month, "at": at,
            "test_mode": testmode.active(), _TIER: tier, **more}


def refusal(row, amount: int, month: date) -> DomainError:
    """Why the charge matched nothing, from the balance row as it stands (None: no balance)."""
    if row is not None and testmode.active() and not row.is_test:
        return TestModeViolation()
    if row is None or row.subscription_credits + row.bonus_credits < amount:
        return InsufficientCredits(amount, 0 if row is None else row.subscription_credits + row.bonus_credits)
    spent = row.mtd_credits if row.mtd_month == month else 0
    return MonthlyCapExceeded(row.monthly_cap, spent, amount)
