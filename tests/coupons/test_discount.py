"""Discount math of DESIGN.md §4."""
from decimal import Decimal

from app.coupons.discount import compute


def test_black_friday_on_99_99_is_30_off_and_69_99_to_pay():
    benefit = compute("percentage", Decimal("30.00"), Decimal("99.99"))
    assert (benefit.discount, benefit.final_amount, benefit.budget_cost) == (
        Decimal("30.00"), Decimal("69.99"), Decimal("30.00"))


def test_percentage_rounds_half_up_to_the_cent():
    assert compute("percentage", Decimal("15"), Decimal("0.10")).discount == Decimal("0.02")  # 0.015
    assert compute("percentage", Decimal("15"), Decimal("0.30")).discount == Decimal("0.05")  # 0.045
    assert compute("percentage", Decimal("12.5"), Decimal("0.04")).discount == Decimal("0.01")  # 0.005
    assert compute("percentage", Decimal("100"), Decimal("49.99")).final_amount == Decimal("0.00")


def test_fixed_discount_never_exceeds_the_amount():
    assert compute("fixed_amount", Decimal("25.00"), Decimal("99.99")).final_amount == Decimal("74.99")
    capped = compute("fixed_amount", Decimal("25.00"), Decimal("10.00"))
    assert (capped.discount, capped.final_amount, capped.budget_cost) == (
        Decimal("10.00"), Decimal("0.00"), Decimal("10.00"))


def test_credits_cost_the_campaign_their_dollar_value_and_take_nothing_off():
    benefit = compute("credits", Decimal("5000"), Decimal("0.00"))
    assert (benefit.credits, benefit.discount, benefit.budget_cost) == (5000, Decimal("0.00"), Decimal("2.00"))


def test_free_months_are_worth_the_monthly_price():
    assert compute("months_free", Decimal("2"), Decimal("49.99"), "monthly").budget_cost == Decimal("99.98")
    annual = compute("months_free", Decimal("1"), Decimal("499.90"), "annual")
    assert (annual.months, annual.discount, annual.final_amount, annual.budget_cost) == (
        1, Decimal("0.00"), Decimal("499.90"), Decimal("41.66"))
