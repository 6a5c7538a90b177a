"""Metering one LLM request: price it and charge it. The API's hot path.

The charge and its ledger rows are the statements of credits/charge.py. On PostgreSQL they run
as one statement (charge.CHARGE_AND_RECORD: the priced charge and both ledger inserts, in
data-modifying CTEs); elsewhere, and for a request that costs nothing, one after the other.
The priced charge also checks what the price was computed from: the pricing tables' token,
the user's tier and the month-to-date token range of the margin used.
That lets a request be priced optimistically, from this process's pricing snapshot and what it
last saw of the user (or, for a user it has not seen, a guess), in a single round trip; when
anything differs, the balance row is read and locked and the request priced again from it.
Exact either way. The answer is data (credits deducted, usage id, the balance after); the API
builds the response from it and stores it for replays (app/api/).
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from app.core import clock, pg, testmode
from app.core.errors import Conflict, DomainError
from app.core.testmode import TestModeViolation
from app.credits import balances, charge as statements, pricing
from app.credits.balances import B, EMPTY, TWELVE_PLACES, _view, check_request_id, check_tokens, month_start
from app.credits.formula import Quote
from app.credits.models import CLIENT_DEDUCTION_TYPES, TIERS, PricingState

# What each process last saw of a user's balance row: (tier, month, month-to-date tokens).
_seen: dict[tuple[str, int], tuple[str, date, int]] = {}
# A user the process has not charged yet is priced as a guess: the tier of the last user it
# charged, no tokens yet this month. The UPDATE verifies the guess like any other knowledge.
_last_tier: dict[str, str] = {}
MAX_SEEN = 200_000
ATTEMPTS = 3

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


def _usage_values(user_id: int, q: Quote, request_id: str, tier: str) -> dict:
    """The usage row's own bound values (charge.usage_insert)."""
    return {"user_id": user_id, "request_id": request_id, "price_id": q.price_id, "model": q.model,
            "vendor": q.vendor, "tier": tier, "input_tokens": q.input_tokens, "output_tokens": q.output_tokens,
            "vendor_cost": q.vendor_cost, "margin": q.margin, "customer_cost": q.customer_cost.quantize(TWELVE_PLACES)}


def _charge_pg(session, user_id: int, q: Quote, request_id: str, deduction_type: str, at: datetime, tier: str,
               token: str | None, bounds: tuple[int, int]) -> dict | None:
    """The one-statement charge with both ledger rows; None when it refused (funds, cap, world,
    or stale pricing)."""
    month = month_start(at)
    try:
        new = pg.run(session, statements.CHARGE_AND_RECORD, {**_usage_values(user_id, q, request_id, tier),
                     **statements.params(user_id, q.credits, at, month, tokens=q.tokens, tier=tier, pricing_token=token,
                                         mtd_lo=bounds[0], mtd_hi=bounds[1], deduction_type=deduction_type,
                                         related_usage_id=request_id, reason=None, actor_id=None)}).fetchone()
    except IntegrityError as exc:
        raise _duplicate_request(exc) from None
    if new is None:
        return None
    _remember(_key(session, user_id), new.tier, month, new.mtd_tokens)
    return {"credits_deducted": q.credits, "usage_id": new.usage_id, "balance": _view(new, month), "quote": q}


def _optimistic(session, user_id: int, model: str, input_tokens: int, output_tokens: int, request_id: str,
                deduction_type: str, at: datetime) -> dict | None:
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
    return _charge_pg(session, user_id, q, request_id, deduction_type, at, tier, snap.token, bounds)


def calculate_and_deduct(session, user_id: int, model: str, input_tokens: int, output_tokens: int,
                         request_id: str, deduction_type: str = "inference", at: datetime | None = None) -> dict:
    """Price one LLM request and charge it, recording usage and deduction (caller commits):
    {credits_deducted, usage_id, balance (BalanceView), quote}."""
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
        done = _optimistic(session, user_id, model, input_tokens, output_tokens, request_id, deduction_type, at)
        if done is not None:
            return done
    for _ in range(ATTEMPTS):
        # Lock the balance row: the tiered margin sees exact month-to-date tokens.
        row = pg.run(session, _LOCK_BALANCE, {"user_id": user_id}).fetchone()
        if row is not None and testmode.active() and not row.is_test:
            raise TestModeViolation()  # the charge's WHERE refuses it too (testmode.may_change_sql)
        token = row.pricing_token if row is not None else pricing.current_token(session)
        tier = row.tier if row is not None else "free"
        month_tokens = row.mtd_tokens if row is not None and row.mtd_month == month else 0
        snap = pricing.snapshot(session, token, known=True)
        q = pricing.quote(snap, tier, model, input_tokens, output_tokens, month_tokens, at)
        if not (postgres and q.credits > 0 and row is not None):
            return charge(session, user_id, q, request_id, deduction_type, at, tier, row)
        done = _charge_pg(session, user_id, q, request_id, deduction_type, at, tier, token,
                          pricing.margin_bounds(snap, tier, at, month_tokens))
        if done is not None:
            return done
        spent = row.mtd_credits if row.mtd_month == month else 0
        if row.subscription_credits + row.bonus_credits < q.credits or (
                row.monthly_cap is not None and spent + q.credits > row.monthly_cap):
            raise statements.refusal(row, q.credits, month)
        # Only the pricing changed since the row was read (a price committed meanwhile): again.
    raise Conflict("pricing_changed", "Prices changed while this request was priced; retry it.", None)


def charge(session, user_id: int, q: Quote, request_id: str, deduction_type: str, at: datetime, tier: str,
           row=None) -> dict:
    """Deduct a priced request (if it costs credits; else only its tokens count) and write its
    usage and deduction rows, statement by statement (SQLite, requests that cost nothing, the
    seed's examples): the same statements as the one-statement charge."""
    month = month_start(at)
    new = balances.charge_balance(session, user_id, q.credits, at, tokens=q.tokens, toward_cap=q.credits > 0,
                                  row=row, missing_ok=q.credits == 0)
    try:
        usage_id = session.execute(statements.USAGE_INSERT, {
            **_usage_values(user_id, q, request_id, tier), "amount": q.credits, "at": at,
            "owner_is_test": bool(new is not None and new.is_test), "test_mode": testmode.active()}).scalar_one()
    except IntegrityError as exc:
        raise _duplicate_request(exc) from None
    if q.credits > 0:
        balances.record_deduction(session, user_id, q.credits, deduction_type, at, new, usage_id=usage_id,
                                  related_usage_id=request_id)
    return {"credits_deducted": q.credits, "usage_id": usage_id,
            "balance": EMPTY if new is None else _view(new, month), "quote": q}


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
