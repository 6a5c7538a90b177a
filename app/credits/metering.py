"""Metering one LLM request: price it and charge it. The API's hot path.

On PostgreSQL the charge is one statement: the conditional UPDATE of the balance (subscription
credits first, then bonus; never below zero or past the monthly cap) and both ledger inserts,
in a data-modifying CTE. The same UPDATE also checks what the price was computed from: the
pricing tables' token, the user's tier and the month-to-date token range of the margin used.
That lets a request be priced optimistically, from this process's pricing snapshot and what it
last saw of the user (or, for a user it has not seen, a guess), in a single round trip; when
anything differs, the balance row is read and locked and the request priced again from it.
Exact either way.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, case, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from app.core import clock, pg, testmode
from app.core.errors import Conflict, DomainError
from app.core.testmode import TestModeViolation
from app.credits import pricing
from app.credits.balances import (B, EMPTY, TWELVE_PLACES, _apply, _ledger_is_test, _refusal, _view, check_request_id,
                                  check_tokens, month_start)
from app.credits.formula import Quote
from app.credits.models import CLIENT_DEDUCTION_TYPES, TIERS, CreditDeduction, PricingState, TokenUsage

if TYPE_CHECKING:
    from app.api.idempotency import Claim

# What each process last saw of a user's balance row: (tier, month, month-to-date tokens).
_seen: dict[tuple[str, int], tuple[str, date, int]] = {}
# A user the process has not charged yet is priced as a guess: the tier of the last user it
# charged, no tokens yet this month. The UPDATE verifies the guess like any other knowledge.
_last_tier: dict[str, str] = {}
MAX_SEEN = 200_000
ATTEMPTS = 3

_CHARGE_CTES = """
WITH upd AS (
  UPDATE credit_balances SET
    subscription_credits = subscription_credits - LEAST(subscription_credits, :amount),
    bonus_credits = bonus_credits - (:amount - LEAST(subscription_credits, :amount)),
    mtd_month = :month,
    mtd_credits = CASE WHEN mtd_month = :month THEN mtd_credits ELSE 0 END + :amount,
    mtd_tokens = CASE WHEN mtd_month = :month THEN mtd_tokens ELSE 0 END + :tokens,
    updated_at = :at
  WHERE user_id = :user_id AND subscription_credits + bonus_credits >= :amount
    AND (is_test OR NOT :force_test)
    AND (monthly_cap IS NULL OR CASE WHEN mtd_month = :month THEN mtd_credits ELSE 0 END + :amount <= monthly_cap)
    AND tier = :tier
    AND (SELECT token FROM pricing_state WHERE id = 1) IS NOT DISTINCT FROM :pricing_token
    AND CASE WHEN mtd_month = :month THEN mtd_tokens ELSE 0 END >= :mtd_lo
    AND CASE WHEN mtd_month = :month THEN mtd_tokens ELSE 0 END < :mtd_hi
  RETURNING subscription_credits, bonus_credits, monthly_cap, mtd_month, mtd_credits, mtd_tokens, tier, is_test
), used AS (
  INSERT INTO token_usage (user_id, request_id, model_price_id, model_name, vendor_name, tier, input_tokens,
      output_tokens, vendor_cost_usd, margin_percentage, customer_cost_usd, credits, is_test, created_at)
  SELECT :user_id, :request_id, :price_id, :model, :vendor, :tier, :input_tokens, :output_tokens, :vendor_cost,
         :margin, :customer_cost, :amount, :force_test OR upd.is_test, :at FROM upd
  RETURNING id, is_test
), deducted AS (
  INSERT INTO credit_deductions (user_id, amount, deduction_type, usage_id, related_usage_id, balance_after,
      is_test, created_at)
  SELECT :user_id, :amount, :deduction_type, used.id, :request_id, upd.subscription_credits + upd.bonus_credits,
         used.is_test, :at FROM upd, used
)"""
# The API's answer (credits/api.py, Charged: the balance after the charge, month to date) kept on
# the request's Idempotency-Key record by the same statement, for replays.
_STORE_ANSWER = """, stored AS (
  UPDATE idempotency_records SET response_status = 201, is_test = :record_is_test, response_body = json_build_object(
    'credits_deducted', :amount, 'usage_id', used.id, 'balance', json_build_object(
      'subscription_credits', upd.subscription_credits, 'bonus_credits', upd.bonus_credits,
      'total', upd.subscription_credits + upd.bonus_credits, 'monthly_cap', upd.monthly_cap,
      'month_to_date', json_build_object('credits', upd.mtd_credits, 'tokens', upd.mtd_tokens)))
  FROM upd, used WHERE idempotency_records.id = :record_id
  RETURNING response_body
)"""
_CHARGED = """
SELECT upd.subscription_credits, upd.bonus_credits, upd.monthly_cap, upd.mtd_month, upd.mtd_credits,
       upd.mtd_tokens, upd.tier, upd.is_test, used.id AS usage_id{answer} FROM upd, used
"""
_CHARGE_PG = text(_CHARGE_CTES + _CHARGED.format(answer=""))
_CHARGE_AND_STORE_PG = text(_CHARGE_CTES + _STORE_ANSWER + _CHARGED.format(
    answer=", (SELECT response_body::text FROM stored) AS answer"))

# The balance row, locked, with the pricing token it is priced against (a first request, or stale knowledge).
_LOCK_BALANCE = (select(B, select(PricingState.token).where(PricingState.id == 1).scalar_subquery()
                        .label("pricing_token"))
                 .where(B.c.user_id == bindparam("user_id")).with_for_update(of=B))


def _key(session, user_id: int) -> tuple[str, int]:
    return pricing.database_key(session), user_id


def _remember(key: tuple[str, int], tier: str, month: date, mtd_tokens: int) -> None:
    if len(_seen) >= MAX_SEEN:
        _seen.clear()
    _seen[key] = (tier, month, mtd_tokens)
    _last_tier[key[0]] = tier


def _duplicate_request(exc: IntegrityError) -> Conflict:
    if not any(s in str(exc.orig) for s in ("uq_token_usage_user_request", "token_usage.request_id")):
        raise exc
    return Conflict("duplicate_request_id", "This request_id has been charged already.", "request_id")


def _charge_pg(session, user_id: int, q: Quote, request_id: str, deduction_type: str, at: datetime, tier: str,
               token: str | None, bounds: tuple[int, int], claim: Claim | None) -> dict | None:
    """The one-statement charge (storing the answer on the claim, if any, and handing its text
    back as claim.answer); None when the UPDATE refused (funds, cap, or stale pricing)."""
    month = month_start(at)
    stored = {} if claim is None else {"record_id": claim.record_id, "record_is_test": claim.is_test}
    try:
        new = pg.run(session, _CHARGE_PG if claim is None else _CHARGE_AND_STORE_PG, {**stored,
            "amount": q.credits, "tokens": q.tokens, "month": month, "at": at, "user_id": user_id,
            "request_id": request_id, "price_id": q.price_id, "model": q.model, "vendor": q.vendor, "tier": tier,
            "input_tokens": q.input_tokens, "output_tokens": q.output_tokens, "vendor_cost": q.vendor_cost,
            "margin": q.margin, "customer_cost": q.customer_cost.quantize(TWELVE_PLACES),
            "force_test": testmode.active(), "deduction_type": deduction_type, "pricing_token": token,
            "mtd_lo": bounds[0], "mtd_hi": bounds[1]}).fetchone()
    except IntegrityError as exc:
        raise _duplicate_request(exc) from None
    if new is None:
        return None
    if claim is not None:
        claim.answer = new.answer
    _remember(_key(session, user_id), new.tier, month, new.mtd_tokens)
    return {"credits_deducted": q.credits, "usage_id": new.usage_id, "balance": _view(new, month), "quote": q}


def _optimistic(session, user_id: int, model: str, input_tokens: int, output_tokens: int, request_id: str,
                deduction_type: str, at: datetime, claim: Claim | None) -> dict | None:
    """Price from what this process already knows; the UPDATE verifies all of it."""
    key = _key(session, user_id)
    seen, snap = _seen.get(key), pricing.cached(key[0])
    if seen is None and key[0] in _last_tier:
        seen = (_last_tier[key[0]], month_start(at), 0)
    if seen is None or snap is None or seen[1] != month_start(at):
        return None
    tier, _, month_tokens = seen
    try:
        q = pricing.quote(snap, tier, model, input_tokens, output_tokens, month_tokens, at)
        bounds = pricing.margin_bounds(snap, tier, at, month_tokens)
    except DomainError:
        return None  # maybe only this process's snapshot lacks it: decide on fresh data
    if q.credits <= 0:
        return None
    return _charge_pg(session, user_id, q, request_id, deduction_type, at, tier, snap.token, bounds, claim)


def calculate_and_deduct(session, user_id: int, model: str, input_tokens: int, output_tokens: int,
                         request_id: str, deduction_type: str = "inference", at: datetime | None = None,
                         claim: Claim | None = None) -> dict:
    """Price one LLM request and charge it, recording usage and deduction (caller commits).
    With a claim (the API's Idempotency-Key record) the answer is stored on it by the charge
    statement itself where it can be (PostgreSQL, a request that costs credits)."""
    check_tokens(input_tokens, "input_tokens")
    check_tokens(output_tokens, "output_tokens")
    request_id = check_request_id(request_id)
    if deduction_type not in CLIENT_DEDUCTION_TYPES:
        raise DomainError("invalid_deduction_type", f"Pick one of: {', '.join(CLIENT_DEDUCTION_TYPES)}.",
                          "deduction_type")
    at = at or clock.now()
    month = month_start(at)
    postgres = pg.bind_of(session).dialect.name == "postgresql"
    if postgres:
        done = _optimistic(session, user_id, model, input_tokens, output_tokens, request_id, deduction_type, at,
                           claim)
        if done is not None:
            return done
    for _ in range(ATTEMPTS):
        # Lock the balance row: the tiered margin sees exact month-to-date tokens.
        row = pg.run(session, _LOCK_BALANCE, {"user_id": user_id}).fetchone()
        if row is not None and testmode.active() and not row.is_test:
            raise TestModeViolation()  # the charge's WHERE refuses it too (is_test OR NOT :force_test)
        token = row.pricing_token if row is not None else pricing.current_token(session)
        tier = row.tier if row is not None else "free"
        month_tokens = row.mtd_tokens if row is not None and row.mtd_month == month else 0
        snap = pricing.snapshot(session, token, known=True)
        q = pricing.quote(snap, tier, model, input_tokens, output_tokens, month_tokens, at)
        if not (postgres and q.credits > 0 and row is not None):
            return charge(session, user_id, q, request_id, deduction_type, at, tier, row)
        done = _charge_pg(session, user_id, q, request_id, deduction_type, at, tier, token,
                          pricing.margin_bounds(snap, tier, at, month_tokens), claim)
        if done is not None:
            return done
        spent = row.mtd_credits if row.mtd_month == month else 0
        if row.subscription_credits + row.bonus_credits < q.credits or (
                row.monthly_cap is not None and spent + q.credits > row.monthly_cap):
            raise _refusal(row, q.credits, month)
        # Only the pricing changed since the row was read (a price committed meanwhile): again.
    raise Conflict("pricing_changed", "Prices changed while this request was priced; retry it.", None)


def charge(session, user_id: int, q: Quote, request_id: str, deduction_type: str, at: datetime, tier: str,
           row=None) -> dict:
    """Deduct a priced request (if it costs credits) and write its usage and deduction rows,
    statement by statement (SQLite, requests that cost nothing, the seed's examples)."""
    month = month_start(at)
    if q.credits > 0:
        new = _apply(session, user_id, q.credits, q.tokens, at, row=row)
        view = _view(new, month)
    else:
        new = session.execute(update(B).where(B.c.user_id == user_id).values(
            mtd_month=month, mtd_credits=case((B.c.mtd_month == month, B.c.mtd_credits), else_=0),
            mtd_tokens=case((B.c.mtd_month == month, B.c.mtd_tokens), else_=0) + q.tokens, updated_at=at,
        ).returning(*[B.c[c] for c in ("subscription_credits", "bonus_credits", "monthly_cap", "mtd_month",
                                        "mtd_credits", "mtd_tokens", "tier", "is_test")])).first()
        view = EMPTY if new is None else _view(new, month)
    is_test = _ledger_is_test(new)
    try:
        usage_id = session.execute(insert(TokenUsage.__table__).values(
            user_id=user_id, request_id=request_id, model_price_id=q.price_id, model_name=q.model,
            vendor_name=q.vendor, tier=tier, input_tokens=q.input_tokens, output_tokens=q.output_tokens,
            vendor_cost_usd=q.vendor_cost, margin_percentage=q.margin,
            customer_cost_usd=q.customer_cost.quantize(TWELVE_PLACES), credits=q.credits,
            is_test=is_test, created_at=at,
        ).returning(TokenUsage.__table__.c.id)).scalar_one()
    except IntegrityError as exc:
        raise _duplicate_request(exc) from None
    if q.credits > 0:
        session.execute(insert(CreditDeduction.__table__).values(
            user_id=user_id, amount=q.credits, deduction_type=deduction_type, usage_id=usage_id,
            related_usage_id=request_id, balance_after=view.total, is_test=is_test, created_at=at))
    return {"credits_deducted": q.credits, "usage_id": usage_id, "balance": view, "quote": q}


def estimate(session, user_id: int | None, model: str, input_tokens: int, output_tokens: int,
             tier: str | None = None, month_tokens: int | None = None, at: datetime | None = None) -> Quote:
    """What a request would cost, without charging it (the calculator and calculate-cost)."""
    check_tokens(input_tokens, "input_tokens")
    check_tokens(output_tokens, "output_tokens")
    at = at or clock.now()
    if tier is None or month_tokens is None:
        row = session.execute(select(B.c.tier, B.c.mtd_month, B.c.mtd_tokens).where(B.c.user_id == user_id)).first()
        tier = tier or (row.tier if row is not None else "free")
        if month_tokens is None:
            month_tokens = row.mtd_tokens if row is not None and row.mtd_month == month_start(at) else 0
    if tier not in TIERS:
        raise DomainError("invalid_tier", f"Pick one of: {', '.join(TIERS)}.", "tier")
    return pricing.quote(pricing.snapshot(session), tier, model, input_tokens, output_tokens, month_tokens, at)
