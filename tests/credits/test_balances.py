"""Balances: subscription credits first, then bonus; never below zero or past the cap; lazy
month reset; the ledgers always add up to the balance."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.core import clock, testmode
from app.core.testmode import TestModeViolation
from app.core.errors import DomainError
from app.api.schemas import dump
from app.credits import balances, metering
from app.credits.api_schemas import Balance
from app.credits.models import CreditAllocation, CreditBalance, CreditDeduction, TokenUsage
from tests.credits.conftest import ledger_total, utc


def rows(session, model, user_id):
    return session.scalars(select(model).where(model.user_id == user_id).order_by(model.id)).all()


def test_scenario_6_pro_user_gpt4_turbo_500_300_is_49_credits(priced, frozen_clock, funded):
    user = funded(subscription=10_000, tier="pro")
    result = metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "req-s6")
    assert result["credits_deducted"] == 49
    usage = rows(priced, TokenUsage, user.id)[0]
    assert (usage.vendor_cost_usd, usage.margin_percentage, usage.customer_cost_usd, usage.credits) == (
        Decimal("0.014"), Decimal("40.00"), Decimal("0.0196"), 49)
    deduction = rows(priced, CreditDeduction, user.id)[0]
    assert (deduction.amount, deduction.deduction_type, deduction.usage_id, deduction.balance_after) == (
        49, "inference", usage.id, 9_951)
    assert dump(Balance, result["balance"]) == {"subscription_credits": 9_951, "bonus_credits": 0, "total": 9_951,
                                                "monthly_cap": None, "month_to_date": {"credits": 49, "tokens": 800}}


def test_scenario_1_free_user_spends_then_the_month_resets_to_100(priced, frozen_clock, funded):
    """Seed 001 scenario 1 by the rule: 200/150 GPT-4 Turbo tokens at the free tier's 50% are
    24 credits (the seed's 16 would be margin-free), leaving 76; the new period brings 100 back."""
    user = funded(subscription=100, tier="free")
    assert metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 200, 150, "req-1")["credits_deducted"] == 24
    assert balances.get_balance(priced, user.id).total == 76
    clock.freeze(utc(2025, 12, 1, 0, 5))
    view = balances.allocate_period(priced, user.id, 100, 0, utc(2025, 12, 1), utc(2025, 12, 31, 23, 59, 59))
    assert (view.subscription_credits, view.bonus_credits, view.mtd_credits) == (100, 0, 0)
    kinds = [(d.deduction_type, d.amount) for d in rows(priced, CreditDeduction, user.id)]
    assert kinds == [("inference", 24), ("expiration", 76)]
    assert ledger_total(priced, user.id) == 100


def test_rollover_keeps_up_to_the_tier_maximum(priced, frozen_clock, funded):
    user = funded(subscription=10_000, tier="pro")
    balances.deduct(priced, user.id, 5_000, "custom")
    view = balances.allocate_period(priced, user.id, 10_000, 2_000, utc(2025, 12, 1), utc(2025, 12, 31))
    assert view.subscription_credits == 12_000
    sources = [(a.source, a.amount) for a in rows(priced, CreditAllocation, user.id)]
    assert sources[-2:] == [("rollover", 2_000), ("monthly_allocation", 10_000)]
    assert ledger_total(priced, user.id) == 12_000


def test_subscription_credits_go_first_then_bonus(priced, frozen_clock, funded):
    user = funded(subscription=30, bonus=50)
    _, view = balances.deduct(priced, user.id, 40, "inference")
    assert (view.subscription_credits, view.bonus_credits) == (0, 40)
    _, view = balances.deduct(priced, user.id, 40, "embedding")
    assert (view.subscription_credits, view.bonus_credits, view.total) == (0, 0, 0)


def test_insufficient_credits_is_402_and_writes_nothing(priced, frozen_clock, funded):
    user = funded(subscription=48)
    with pytest.raises(DomainError) as err:
        metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "req-1")
    assert (err.value.code, err.value.status) == ("insufficient_credits", 402)
    assert balances.get_balance(priced, user.id).total == 48
    assert rows(priced, TokenUsage, user.id) == [] and rows(priced, CreditDeduction, user.id) == []


def test_a_user_without_a_balance_cannot_spend(priced, frozen_clock, make_user):
    user = make_user()
    with pytest.raises(DomainError) as err:
        metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 1, 1, "req-1")
    assert err.value.code == "insufficient_credits"


def test_monthly_cap_refuses_past_the_cap_and_resets_next_month(priced, frozen_clock, funded):
    user = funded(subscription=1_000, cap=100)
    balances.deduct(priced, user.id, 60, "inference")
    with pytest.raises(DomainError) as err:
        balances.deduct(priced, user.id, 41, "inference")
    assert (err.value.code, err.value.status) == ("monthly_cap_exceeded", 402)
    _, view = balances.deduct(priced, user.id, 40, "inference")
    assert view.mtd_credits == 100
    clock.freeze(utc(2025, 12, 1))
    assert balances.get_balance(priced, user.id).mtd_credits == 0  # shown reset before any write
    _, view = balances.deduct(priced, user.id, 100, "inference")
    assert (view.mtd_credits, view.total) == (100, 800)
    stored = priced.get(CreditBalance, user.id)
    priced.refresh(stored)
    assert stored.mtd_month.month == 12


def test_tiered_margin_switches_at_exactly_10m_tokens_this_month(priced, frozen_clock, funded):
    user = funded(subscription=10_000_000, tier="pro")
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 9_999_999, 0, "a")  # 0 tokens so far: 40%
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 1, 0, "b")          # 9,999,999 so far: 40%
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 1_000, 0, "c")      # exactly 10M: 30%
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 10_000_000, 0, "d")
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 10_000_000, 0, "e")
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 10_000_000, 0, "f")
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 9_999_000, 0, "g")  # 40,001,000 so far: 30%
    metering.calculate_and_deduct(priced, user.id, "llama-2-70b", 1, 0, "h")          # exactly 50M: 20%
    margins = [u.margin_percentage for u in rows(priced, TokenUsage, user.id)]
    assert margins == [Decimal(m) for m in ("40", "40", "30", "30", "30", "30", "30", "20")]
    assert balances.get_balance(priced, user.id).mtd_tokens == 50_000_001


def test_perpetual_byok_usage_is_recorded_and_costs_nothing(priced, frozen_clock, funded):
    user = funded(tier="perpetual")
    result = metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "req-byok")
    assert result["credits_deducted"] == 0
    usage = rows(priced, TokenUsage, user.id)[0]
    assert (usage.credits, usage.margin_percentage, usage.vendor_cost_usd) == (0, Decimal("0"), Decimal("0.014"))
    assert rows(priced, CreditDeduction, user.id) == []
    assert balances.get_balance(priced, user.id).mtd_tokens == 800


def test_a_request_id_is_charged_once(priced, frozen_clock, funded):
    user = funded(subscription=1_000)
    metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "req-1")
    with pytest.raises(DomainError) as err, priced.begin_nested():
        metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "req-1")
    assert (err.value.code, err.value.status) == ("duplicate_request_id", 409)
    assert balances.get_balance(priced, user.id).total == 951
    assert ledger_total(priced, user.id) == 951


@pytest.mark.parametrize("kwargs, code, field", [
    ({"input_tokens": -1}, "invalid_tokens", "input_tokens"),
    ({"output_tokens": 10_000_001}, "invalid_tokens", "output_tokens"),
    ({"input_tokens": 1.5}, "invalid_tokens", "input_tokens"),
    ({"input_tokens": True}, "invalid_tokens", "input_tokens"),
    ({"request_id": ""}, "invalid_request_id", "request_id"),
    ({"deduction_type": "expiration"}, "invalid_deduction_type", "deduction_type"),
])
def test_bad_requests_are_refused_before_anything_is_written(priced, frozen_clock, funded, kwargs, code, field):
    user = funded(subscription=1_000)
    args = {"model": "gpt-4-turbo", "input_tokens": 5, "output_tokens": 5, "request_id": "r"} | kwargs
    with pytest.raises(DomainError) as err:
        metering.calculate_and_deduct(priced, user.id, **args)
    assert (err.value.code, err.value.field) == (code, field)
    assert balances.get_balance(priced, user.id).total == 1_000


def test_ledgers_are_marked_test_for_test_users_and_in_test_mode(priced, frozen_clock, funded):
    tester = funded(subscription=100, test=True)
    balances.deduct(priced, tester.id, 1, "inference")
    real = funded(subscription=100)
    balances.deduct(priced, real.id, 1, "inference")
    with testmode.test_mode(), pytest.raises(TestModeViolation):  # test mode never moves a real balance
        balances.deduct(priced, real.id, 1, "inference")
    with testmode.test_mode():
        balances.deduct(priced, tester.id, 1, "inference")
    assert [d.is_test for d in rows(priced, CreditDeduction, tester.id)] == [True, True]
    assert [d.is_test for d in rows(priced, CreditDeduction, real.id)] == [False]
    assert [a.is_test for a in rows(priced, CreditAllocation, tester.id)] == [True]
    assert priced.get(CreditBalance, tester.id).is_test and not priced.get(CreditBalance, real.id).is_test


def test_monthly_cap_validation(priced, funded):
    user = funded()
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(DomainError) as err:
            balances.set_monthly_cap(priced, user.id, bad)
        assert err.value.field == "monthly_cap"
    assert balances.set_monthly_cap(priced, user.id, 500).monthly_cap == 500
    assert balances.set_monthly_cap(priced, user.id, None).monthly_cap is None


def test_allocation_sources_fill_their_bucket(priced, frozen_clock, funded):
    user = funded()
    for source in ("monthly_allocation", "rollover"):
        balances.allocate(priced, user.id, 10, source)
    for source in ("promotional_bonus", "coupon", "purchase", "admin_grant"):
        balances.allocate(priced, user.id, 1, source, expires_at=clock.now() + timedelta(days=30))
    view = balances.get_balance(priced, user.id)
    assert (view.subscription_credits, view.bonus_credits) == (20, 4)
    with pytest.raises(DomainError):
        balances.allocate(priced, user.id, 10, "gift")
    with pytest.raises(DomainError):
        balances.allocate(priced, user.id, 0, "purchase")
    assert priced.scalar(select(func.count()).select_from(CreditAllocation)
                         .where(CreditAllocation.user_id == user.id)) == 6


def test_what_a_process_remembers_of_a_user_is_checked_not_trusted(priced, frozen_clock, funded):
    """The optimistic one-statement charge prices from remembered tier and month-to-date tokens;
    the UPDATE verifies them, so a stale memory costs a retry, never a wrong price."""
    user = funded(subscription=100_000, tier="pro")
    metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "a")
    key, month = metering._key(priced, user.id), balances.month_start(clock.now())
    metering._seen[key] = ("free", month, 800)  # the tier changed since (free would be 53 credits)
    assert metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "b")["credits_deducted"] == 49
    metering._seen[key] = ("pro", month, 20_000_000)  # a bracket it has not reached (30% would be 46)
    assert metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "c")["credits_deducted"] == 49
    margins = [u.margin_percentage for u in rows(priced, TokenUsage, user.id)]
    assert margins == [Decimal("40.00")] * 3
    assert balances.get_balance(priced, user.id).total == 100_000 - 3 * 49
