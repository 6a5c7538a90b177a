"""Facts about a customer that coupon rules and fraud detectors read from other domains.

Each is one small function so that rules.py and fraud.py never query another domain's
tables directly; the billing, credits and licensing services answer behind them.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select

from app.core.errors import DomainError
from app.coupons.models import Redemption


class SourceUnavailable(DomainError):
    """A rule needs a domain this installation does not have; the rule fails closed."""

    def __init__(self, what: str):
        super().__init__("rule_unavailable", f"This coupon's rules need {what}, which is not available.")


def has_purchased_before(session, user_id: int, is_test: bool) -> bool:
    """An earlier successful coupon redemption makes a customer a returning one."""
    return bool(session.scalar(select(exists().where(
        Redemption.user_id == user_id, Redemption.status == "success"))))


def credit_balance(session, user_id: int) -> int:
    raise SourceUnavailable("the credit balance")


def refunded_since(session, user_id: int, since: datetime) -> bool:
    raise SourceUnavailable("refund history")


def has_payment_method(session, user_id: int) -> bool:
    raise SourceUnavailable("payment methods")


def licensed_fingerprints(session, user_id: int) -> set[str]:
    """Fingerprints of the user's active device activations on active licenses.

    The licensing domain is built alongside; until it is installed no device is licensed.
    """
    try:
        from app.licensing.models import Activation, License
    except ImportError:
        return set()
    return set(session.scalars(select(Activation.fingerprint).join(License, License.id == Activation.license_id)
                               .where(License.user_id == user_id, License.status == "active",
                                      Activation.status == "active")))
