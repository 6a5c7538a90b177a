"""Mid-cycle proration, exactly as DESIGN.md §4.

unused = floor_to_cent(old_price * days_remaining / days_in_cycle)
new_cost = floor_to_cent(new_price * days_remaining / days_in_cycle)
net = new_cost - unused (negative is a refund)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from app.billing import periods
from app.core.errors import DomainError
from app.core.money import floor_to_cent


@dataclass(frozen=True)
class Quote:
    from_tier: str
    to_tier: str | None
    change_type: str
    days_remaining: int
    days_in_cycle: int
    unused_credit_value: Decimal
    new_tier_prorated_cost: Decimal
    net_charge: Decimal
    effective_date: datetime
    credits_difference: int = 0

    def as_api(self) -> dict:
        """The client contract's shape (DESIGN.md §6): money as decimal strings."""
        return {"from_tier": self.from_tier, "to_tier": self.to_tier, "change_type": self.change_type,
                "days_remaining": self.days_remaining, "days_in_cycle": self.days_in_cycle,
                "unused_credit_value_usd": str(self.unused_credit_value),
                "new_tier_prorated_cost_usd": str(self.new_tier_prorated_cost),
                "net_charge_usd": str(self.net_charge), "effective_date": self.effective_date.isoformat()}

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update({k: str(v) for k, v in data.items() if isinstance(v, Decimal)})
        data["effective_date"] = self.effective_date.isoformat()
        return data


def prorate(amount: Decimal, remaining: int, in_cycle: int) -> Decimal:
    return floor_to_cent(Decimal(amount) * remaining / in_cycle)


def compute(*, from_tier: str, to_tier: str | None, old_price: Decimal, new_price: Decimal,
            period_start: datetime, period_end: datetime, effective: datetime, change_type: str,
            old_credits: int = 0, new_credits: int = 0) -> Quote:
    """A quote for a change taking effect at `effective` inside [period_start, period_end]."""
    if not period_start <= effective <= period_end:
        raise DomainError("effective_date_outside_period",
                          f"The effective date must fall inside the current period "
                          f"({period_start:%Y-%m-%d} to {period_end:%Y-%m-%d}).", "effective_date")
    in_cycle = periods.days_in_cycle(period_start, period_end)
    remaining = periods.days_remaining(period_end, effective)
    unused = prorate(old_price, remaining, in_cycle)
    new_cost = prorate(new_price, remaining, in_cycle) if to_tier else Decimal("0.00")
    # The credit top-up for an upgrade: the difference in monthly credits for the days left.
    extra = max(0, (new_credits - old_credits) * remaining // in_cycle) if change_type == "upgrade" else 0
    return Quote(from_tier, to_tier, change_type, remaining, in_cycle, unused, new_cost, new_cost - unused,
                 effective, extra)
