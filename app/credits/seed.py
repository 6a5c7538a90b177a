"""Seed 001 Plan 112: providers, prices, margins, balances, the ledger examples and the margin
audit log. Idempotent, like every seeder.

Where the seed disagrees with the rule of DESIGN.md §4 the rule wins and the seed's own
example is left out: its "Deduction 1" (16 credits for req_20251108_001, which the rule prices
at 18) and its daily-summary figures (gpt-4-turbo 2500/1200 tokens is $0.061, not $0.066).
The seed's usage examples carry no margin (18, 41, 140 and 2 credits are the margin-free
figures), so they are recorded at 0% as the seed shows them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from app.auth.service import hash_password
from app.core import seedtime
from app.credits import balances, margins, metering, summaries
from app.credits.formula import Quote, credits_for, customer_cost, vendor_cost
from app.credits.models import CreditAllocation, CreditDeduction, MarginConfig, ModelPrice, Provider, TokenUsage
from app.users.models import User


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


PROVIDERS = [
    ("openai", "OpenAI", "https://api.openai.com/v1"),
    ("anthropic", "Anthropic", "https://api.anthropic.com/v1"),
    ("google", "Google Cloud AI", "https://generativelanguage.googleapis.com"),
    ("meta", "Meta AI", "https://api.llama.meta.com"),
    ("mistral", "Mistral AI", "https://api.mistral.ai/v1"),
    ("cohere", "Cohere", "https://api.cohere.com/v1"),
]
PRICES = [  # vendor, model, input $/M, output $/M
    ("openai", "gpt-4-turbo", "10.00", "30.00"),
    ("anthropic", "claude-3.5-sonnet", "3.00", "15.00"),
    ("google", "gemini-1.5-pro", "3.50", "10.50"),
    ("meta", "llama-2-70b", "0.75", "1.00"),
]
NOV_1 = "2025-11-01T00:00:00Z"
PRO_BRACKETS = [("0", "40.00"), ("10000000", "30.00"), ("50000000", "20.00")]
# tier, strategy, margin, brackets, adjustments, effective, reason, actor email, actor label, at
MARGINS = [
    ("pro", "tiered", None, [("0", "35.00"), ("10000000", "30.00"), ("50000000", "20.00")], (),
     "2025-10-01T00:00:00Z", "Launch pricing", None, "system", "2025-10-01T00:00:00Z"),
    ("enterprise_pro", "dynamic", "30.00", None, (), "2025-10-01T00:00:00Z", "Launch pricing", None, "system",
     "2025-10-01T00:00:00Z"),
    ("free", "fixed_percentage", "50.00", None, (), NOV_1, "50% margin on all vendors", None, "system", NOV_1),
    ("pro", "tiered", None, PRO_BRACKETS, (), NOV_1, "Market conditions adjustment - reduced vendor costs",
     "admin.test@rephlo.ai", None, "2025-11-01T09:00:00Z"),
    ("enterprise_pro", "dynamic", "25.00", None, (), NOV_1,
     "Enterprise contract negotiation - Q4 pricing adjustment", None, "finance-admin-id", "2025-11-05T14:30:00Z"),
    ("perpetual", "fixed_percentage", "0.00", None, (), NOV_1, "BYOK: Bring Your Own Key - No credit deductions",
     None, "system", NOV_1),
]
EXTRA_PERSONAS = [  # the seed's enterprise user, and a BYOK (perpetual license) user
    ("enterprise.user@example.com", "Enterprise", "User", "enterpriseuser"),
    ("perpetual.user@example.com", "Perpetual", "User", "perpetualuser"),
]
# email, tier, monthly allocation, promotional bonus
BALANCES = [
    ("free.user@example.com", "free", 100, 0), ("pro.user@example.com", "pro", 10_000, 5_000),
    ("admin.test@rephlo.ai", "pro", 10_000, 0), ("google.user@example.com", "pro", 10_000, 0),
    ("ops.user@rephlo.ai", "pro", 10_000, 0), ("support.user@rephlo.ai", "pro", 10_000, 0),
    ("analyst.user@rephlo.ai", "pro", 10_000, 0), ("auditor.user@rephlo.ai", "pro", 10_000, 0),
    ("enterprise.user@example.com", "enterprise_pro", 50_000, 0), ("perpetual.user@example.com", "perpetual", 0, 0),
]
USAGE = [  # email, model, request id, input, output, timestamp
    ("pro.user@example.com", "gpt-4-turbo", "req_20251108_001", 250, 150, "2025-11-08T10:30:00Z"),
    ("pro.user@example.com", "claude-3.5-sonnet", "req_20251108_002", 1500, 800, "2025-11-08T11:15:00Z"),
    ("enterprise.user@example.com", "gemini-1.5-pro", "req_20251108_003", 10000, 2000, "2025-11-08T14:45:00Z"),
    ("free.user@example.com", "llama-2-70b", "req_20251108_004", 500, 300, "2025-11-08T16:20:00Z"),
]
DEDUCTIONS = [  # seed deductions 2 to 4 (1 disagrees with the rule, see the module docstring)
    ("enterprise.user@example.com", 500, "fine_tuning", "finetune_20251108_001", "2025-11-08T12:00:00Z"),
    ("pro.user@example.com", 5, "embedding", "embed_20251108_001", "2025-11-08T13:30:00Z"),
    ("enterprise.user@example.com", 100, "custom", "custom_20251108_001", "2025-11-08T15:00:00Z"),
]


def _personas(session, log) -> dict[str, User]:
    for email, first, last, username in EXTRA_PERSONAS:
        if session.scalar(select(User).where(User.email == email)) is None:
            session.add(User(email=email, first_name=first, last_name=last, username=username, account_type="test",
                             email_verified=True, password_hash=hash_password("TestPassword123!")))
            log(f"  created {email}")
    session.flush()
    return {u.email: u for u in session.scalars(select(User))}


def _pricing(session, users, log) -> None:
    providers = {p.vendor_name: p for p in session.scalars(select(Provider))}
    for vendor, display, endpoint in PROVIDERS:
        if vendor not in providers:
            providers[vendor] = Provider(vendor_name=vendor, display_name=display, api_endpoint=endpoint,
                                         created_at=_utc(NOV_1), updated_at=_utc(NOV_1))
            session.add(providers[vendor])
    session.flush()
    for vendor, model, inp, out in PRICES:
        if session.scalar(select(ModelPrice.id).where(ModelPrice.model_name == model)) is None:
            session.add(ModelPrice(provider_id=providers[vendor].id, model_name=model, input_price_per_million=Decimal(inp),
                                   output_price_per_million=Decimal(out), effective_date=_utc(NOV_1),
                                   reason="Seed 001 Plan 112", created_at=_utc(NOV_1)))
    session.flush()
    for tier, strategy, margin, brackets, adjustments, effective, reason, email, label, at in MARGINS:
        if session.scalar(select(MarginConfig.id).where(MarginConfig.tier == tier,
                                                        MarginConfig.effective_date == _utc(effective))):
            continue
        margins.set_margin(session, users.get(email) if email else None, tier, strategy, margin, reason,
                           brackets=brackets or (), adjustments=adjustments, effective_date=_utc(effective),
                           actor_label=label, at=_utc(at))
    log("  pricing: 6 providers, 4 model prices, margins for free, pro, enterprise_pro, perpetual")


def _ledgers(session, users, log) -> None:
    """Balances, usage and deductions on today's calendar (core/seedtime.py): the seed's
    November period holds today and its usage is recent, so every 30-day view has data."""
    period = (seedtime.at(NOV_1), seedtime.at("2025-11-30T23:59:59Z"))
    for email, tier, monthly, bonus in BALANCES:
        user = users.get(email)
        if user is None or session.scalar(select(func.count()).select_from(CreditAllocation)
                                          .where(CreditAllocation.user_id == user.id)):
            continue
        balances.ensure_balance(session, user.id, tier=tier, at=period[0])
        if monthly:
            balances.allocate(session, user.id, monthly, "monthly_allocation", period_start=period[0],
                              period_end=period[1], reason="November allocation", at=period[0])
        if bonus:
            balances.allocate(session, user.id, bonus, "promotional_bonus", period_start=period[0],
                              period_end=period[1], reason="Promotional bonus", at=period[0])
    prices = {p.model_name: p for p in session.scalars(select(ModelPrice))}
    for email, model, request_id, inp, out, at in USAGE:
        user = users[email]
        if session.scalar(select(TokenUsage.id).where(TokenUsage.user_id == user.id,
                                                      TokenUsage.request_id == request_id)):
            continue
        price = prices[model]
        cost = vendor_cost(inp, out, price.input_price_per_million, price.output_price_per_million)
        margin = Decimal("0.00")
        q = Quote(model, price.provider.vendor_name, price.id, inp, out, cost, margin, customer_cost(cost, margin),
                  credits_for(cost, margin))
        tier = dict((e, t) for e, t, _, _ in BALANCES)[email]
        metering.charge(session, user.id, q, request_id, "inference", seedtime.at(at), tier)
    for email, amount, kind, related, at in DEDUCTIONS:
        user = users[email]
        if session.scalar(select(CreditDeduction.id).where(CreditDeduction.user_id == user.id,
                                                           CreditDeduction.related_usage_id == related)):
            continue
        balances.deduct(session, user.id, amount, kind, related_usage_id=related, at=seedtime.at(at))
    day = seedtime.day("2025-11-08")
    summaries.build_day(session, day)
    log(f"  credits: balances, allocations, usage 1-4, deductions 2-4, summaries for {day}")


def seed_credits(session, log=print) -> None:
    users = _personas(session, log)
    _pricing(session, users, log)
    _ledgers(session, users, log)
