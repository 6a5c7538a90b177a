"""Facts about a customer that coupon rules and fraud detectors read from other domains.

Each is one small function, so that rules.py and fraud.py never reach into another domain
themselves: billing answers for purchases, refunds and payment methods, credits for the
balance, licensing for the devices a customer has licensed.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select

from app.billing.models import Invoice, PaymentTransaction
from app.billing.subscriptions import live_subscription
from app.coupons.models import Redemption
from app.credits.balances import get_balance
from app.licensing.models import Activation, License


def has_purchased_before(session, user_id: int, is_test: bool) -> bool:
    """A paid invoice with money on it, or an earlier successful coupon, makes a returning customer."""
    if session.scalar(select(exists().where(Invoice.user_id == user_id, Invoice.status == "paid",
                                            Invoice.total > 0))):
        return True
    return bool(session.scalar(select(exists().where(Redemption.user_id == user_id,
                                                     Redemption.status.in_(("success", "pending"))))))


def credit_balance(session, user_id: int) -> int:
    """Subscription plus bonus credits (credits domain)."""
    return get_balance(session, user_id).total


def refunded_since(session, user_id: int, since: datetime) -> bool:
    """A refund requested or paid out to the user since `since` (billing's refund rows)."""
    return bool(session.scalar(select(exists().where(
        PaymentTransaction.user_id == user_id, PaymentTransaction.kind == "refund",
        PaymentTransaction.status.in_(("succeeded", "processing")), PaymentTransaction.created_at >= since))))


def has_payment_method(session, user_id: int) -> bool:
    """A card on file on the user's live subscription (billing)."""
    sub = live_subscription(session, user_id)
    return bool(sub is not None and sub.stripe_customer_id and sub.default_payment_method_id)


def licensed_fingerprints(session, user_id: int) -> set[str]:
    """Fingerprints of the user's active device activations on active licenses."""
    return set(session.scalars(select(Activation.fingerprint).join(License, License.id == Activation.license_id)
                               .where(License.user_id == user_id, License.status == "active",
                                      Activation.status == "active")))
