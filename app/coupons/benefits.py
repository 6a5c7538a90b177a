"""What a successful redemption gives, through the owning domains' services.

Discounts are not pushed anywhere: billing reads the successful, not yet invoiced
redemptions of a subscription when it builds the next invoice. Credits go through the
credits service as bonus credits; free months through billing's paid-through date.
"""
from __future__ import annotations

from app.coupons.models import Redemption
from app.coupons.sources import SourceUnavailable


def apply(session, row: Redemption, attempt) -> None:
    if row.credits_granted:
        raise SourceUnavailable("the credits service")
    if row.months_granted:
        raise SourceUnavailable("the billing service")


def revert(session, row: Redemption) -> None:
    if row.credits_granted:
        raise SourceUnavailable("the credits service")
    if row.months_granted:
        raise SourceUnavailable("the billing service")
