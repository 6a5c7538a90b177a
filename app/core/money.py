"""Money and credit helpers: Decimal only, never a float on a money path."""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
CREDITS_PER_USD = 2500


def to_decimal(value, field: str = "amount") -> Decimal:
    from app.core.errors import DomainError

    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise DomainError("invalid_amount", "Enter an amount such as 99.99.", field) from None
    if not result.is_finite():
        raise DomainError("invalid_amount", "Enter an amount such as 99.99.", field)
    return result


def money(value, field: str = "amount") -> Decimal:
    """Parse a money amount with at most two decimals."""
    from app.core.errors import DomainError

    result = to_decimal(value, field)
    if result != result.quantize(CENT):
        raise DomainError("invalid_amount", "Money amounts have at most two decimals.", field)
    return result.quantize(CENT)


def round_half_up(value: Decimal, exp: Decimal = CENT) -> Decimal:
    return value.quantize(exp, rounding=ROUND_HALF_UP)


def floor_to_cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_DOWN)


def usd_to_credits(amount: Decimal) -> int:
    return int((amount * CREDITS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def fmt(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount.quantize(CENT)}"


def usd(amount: Decimal | None) -> str:
    """Money as people read it: $1,234.56, -$66.66."""
    if amount is None:
        return ""
    value = Decimal(amount).quantize(CENT)
    return ("-" if value < 0 else "") + f"${abs(value):,}"
