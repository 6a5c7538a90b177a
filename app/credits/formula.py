"""The credits formula of DESIGN.md §4, in Decimal only, with no database in sight.

vendor_cost = (input_tokens * input_price + output_tokens * output_price) / 1,000,000
credits     = round_half_up(vendor_cost * (1 + margin/100) * CREDITS_PER_USD), at least 1 if cost > 0
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from app.core.money import CREDITS_PER_USD

MILLION = Decimal(1_000_000)
HUNDRED = Decimal(100)
SIX_PLACES = Decimal("0.000001")
MAX_TOKENS_PER_REQUEST = 10_000_000


@dataclass(frozen=True)
class Quote:
    model: str
    vendor: str
    price_id: int
    input_tokens: int
    output_tokens: int
    vendor_cost: Decimal
    margin: Decimal
    customer_cost: Decimal
    credits: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def vendor_cost(input_tokens: int, output_tokens: int, input_price: Decimal, output_price: Decimal) -> Decimal:
    return (input_tokens * input_price + output_tokens * output_price) / MILLION


def customer_cost(cost: Decimal, margin: Decimal) -> Decimal:
    return cost * (1 + margin / HUNDRED)


def credits_for(cost: Decimal, margin: Decimal) -> int:
    """Credits for a vendor cost at a margin; never zero for a request that cost something."""
    credits = int((customer_cost(cost, margin) * CREDITS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))
    return max(credits, 1) if cost > 0 else credits


def six(value: Decimal) -> str:
    """Token costs travel with 6 places (DESIGN.md §6)."""
    return str(value.quantize(SIX_PLACES, rounding=ROUND_HALF_UP))


def resolve_margin(strategy: str, base: Decimal, brackets, adjustments, vendor: str, month_tokens: int) -> Decimal:
    """The margin for one request.

    fixed_percentage: the base; tiered: the bracket whose min_tokens the user's tokens so far
    this month have reached (so exactly 10M is already the 10M bracket); dynamic: the base plus
    the staff-set adjustment for the model's vendor.
    """
    if strategy == "tiered":
        margin = base
        for bracket in sorted(brackets or [], key=lambda b: int(b["min_tokens"])):
            if month_tokens >= int(bracket["min_tokens"]):
                margin = Decimal(str(bracket["margin"]))
        return margin
    if strategy == "dynamic":
        return base + Decimal(str((adjustments or {}).get(vendor, "0")))
    return base
