"""Discount math (DESIGN.md §4): what a coupon takes off, grants, and costs its campaign.

percentage: round_half_up(amount * pct / 100) to the cent; fixed_amount: min(value, amount);
credits: bonus credits, nothing off the charge; months_free: free months added to the
paid-through date, nothing off the charge. The campaign budget pays the discount, the
dollar value of granted credits (credits / CREDITS_PER_USD) or of the free months.
BF2025-30OFF on 99.99: 29.997 -> 30.00 off, 69.99 to pay (seed 001 scenario 5 writes
"$29.99 savings" next to its own 30.00 and 69.99; the rule and the 30.00 win).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.core.money import CENT, CREDITS_PER_USD, round_half_up

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Benefit:
    discount: Decimal
    final_amount: Decimal
    credits: int = 0
    months: int = 0
    budget_cost: Decimal = ZERO


def monthly_value(amount: Decimal, billing_cycle: str | None) -> Decimal:
    """What one month is worth when amount is the price of one billing period."""
    return round_half_up(amount / 12) if billing_cycle == "annual" else amount


def compute(discount_type: str, value: Decimal, amount: Decimal, billing_cycle: str | None = None) -> Benefit:
    amount = amount.quantize(CENT)
    if discount_type == "percentage":
        off = min(round_half_up(amount * value / 100), amount)
        return Benefit(off, amount - off, budget_cost=off)
    if discount_type == "fixed_amount":
        off = min(value.quantize(CENT), amount)
        return Benefit(off, amount - off, budget_cost=off)
    if discount_type == "credits":
        credits = int(value)
        return Benefit(ZERO, amount, credits=credits, budget_cost=round_half_up(Decimal(credits) / CREDITS_PER_USD))
    if discount_type == "months_free":
        months = int(value)
        return Benefit(ZERO, amount, months=months, budget_cost=monthly_value(amount, billing_cycle) * months)
    raise ValueError(f"unknown discount type {discount_type!r}")
