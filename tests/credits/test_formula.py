"""DESIGN.md §4's formula on seed 001 Plan 112's examples, in Decimal, to the credit."""
from decimal import Decimal

import pytest

from app.credits.formula import credits_for, customer_cost, resolve_margin, six, vendor_cost

D = Decimal
GPT4 = (D("10.00"), D("30.00"))
CLAUDE = (D("3.00"), D("15.00"))
GEMINI = (D("3.50"), D("10.50"))
LLAMA = (D("0.75"), D("1.00"))


@pytest.mark.parametrize("name, tokens, price, cost, credits", [
    ("usage 1: GPT-4 Turbo, no margin", (250, 150), GPT4, "0.007", 18),        # 17.5 rounds half up
    ("usage 2: Claude 3.5 Sonnet", (1500, 800), CLAUDE, "0.0165", 41),          # 41.25
    ("usage 3: Gemini 1.5 Pro, large input", (10000, 2000), GEMINI, "0.056", 140),
    ("usage 4: Llama 2 70B", (500, 300), LLAMA, "0.000675", 2),                 # 1.6875
])
def test_plan_112_usage_examples_at_no_margin(name, tokens, price, cost, credits):
    c = vendor_cost(*tokens, *price)
    assert c == D(cost), name
    assert credits_for(c, D("0.00")) == credits, name


def test_scenario_6_gpt4_turbo_at_the_pro_margin():
    cost = vendor_cost(500, 300, *GPT4)
    assert cost == D("0.014")
    assert customer_cost(cost, D("40.00")) == D("0.0196")
    assert credits_for(cost, D("40.00")) == 49
    assert six(cost) == "0.014000" and six(customer_cost(cost, D("40"))) == "0.019600"


def test_scenario_1_free_tier_follows_the_rule_not_the_seed():
    """The seed says $0.0065 is 16 credits (no margin); the free tier's 50% margin makes it 24."""
    cost = vendor_cost(200, 150, *GPT4)
    assert cost == D("0.0065")
    assert credits_for(cost, D("0")) == 16
    assert credits_for(cost, D("50.00")) == 24


def test_any_cost_is_at_least_one_credit_and_no_cost_is_none():
    tiny = vendor_cost(1, 0, *LLAMA)  # $0.00000075
    assert tiny > 0 and credits_for(tiny, D("0")) == 1
    assert credits_for(vendor_cost(0, 0, *GPT4), D("40")) == 0


def test_no_float_creeps_in():
    cost = vendor_cost(3, 7, D("0.123456"), D("0.654321"))
    assert isinstance(cost, Decimal) and cost == D("0.000004950615")


PRO = [{"min_tokens": 0, "margin": "40.00"}, {"min_tokens": 10_000_000, "margin": "30.00"},
       {"min_tokens": 50_000_000, "margin": "20.00"}]


@pytest.mark.parametrize("tokens, margin", [
    (0, "40.00"), (9_999_999, "40.00"), (10_000_000, "30.00"), (10_000_001, "30.00"),
    (49_999_999, "30.00"), (50_000_000, "20.00"), (900_000_000, "20.00"),
])
def test_tiered_margin_switches_at_exactly_10m_and_50m(tokens, margin):
    assert resolve_margin("tiered", D("40.00"), PRO, None, "openai", tokens) == D(margin)


def test_dynamic_margin_is_base_plus_the_vendor_adjustment():
    adj = {"openai": "5.00", "meta": "-10.00"}
    assert resolve_margin("dynamic", D("25.00"), None, adj, "openai", 0) == D("30.00")
    assert resolve_margin("dynamic", D("25.00"), None, adj, "meta", 0) == D("15.00")
    assert resolve_margin("dynamic", D("25.00"), None, adj, "google", 0) == D("25.00")
    assert resolve_margin("fixed_percentage", D("50.00"), None, None, "openai", 10**9) == D("50.00")
