"""Test twins: what a production customer's sandbox or development key acts as.

Client developers integrate against their own account in test mode, as in Stripe: the key
acts as the customer's twin, a test account linked to the customer (users.twin_of_id), made
on first use with a test subscription of the customer's tier, that tier's credits, and test
copies of the customer's licenses. The twin's balance, seats, coupon uses and plan move; the
customer's never do. Cleanup removes an expired twin like any test account; the next use of
a key makes a new one.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.billing import subscriptions, tiers
from app.core import audit, clock, testmode
from app.core.errors import DomainError
from app.credits import balances
from app.credits.balances import tier_of
from app.credits.models import TIERS
from app.licensing import service as licenses
from app.licensing.models import License
from app.users.models import User

TWIN_LIFETIME = timedelta(days=30)
TWIN_EMAIL_DOMAIN = "example.test"  # RFC 2606: never deliverable


def twin_id(session, customer_id: int) -> int | None:
    return session.scalar(select(User.id).where(User.twin_of_id == customer_id, User.deleted_at.is_(None)))


def twin_for(session, customer_id: int) -> int:
    """The customer's twin, made now if it has none (concurrent first uses make one)."""
    found = twin_id(session, customer_id)
    if found is not None:
        return found
    customer = session.get(User, customer_id)
    try:
        with session.begin_nested():
            twin = _make(session, customer)
    except IntegrityError:  # another request made it first
        return twin_id(session, customer_id)
    return twin.id


def _customer_tier(session, customer: User) -> str:
    sub = tiers.current_subscription(session, customer.id)
    if sub is not None and sub.status != "cancelled":
        return sub.tier.name

    return tier_of(session, customer.id)


def _make(session, customer: User) -> User:
    tier = _customer_tier(session, customer)
    email = f"twin-{customer.id}-{secrets.token_hex(3)}@{TWIN_EMAIL_DOMAIN}"
    with testmode.test_mode():
        twin = User(email=email, first_name=customer.first_name or "Test", last_name=(
            f"{customer.last_name} (test twin)".strip())[:80], account_type="test", is_staff=False,
            email_verified=True, password_hash=None, test_tier=tier, twin_of_id=customer.id,
            test_expires_at=clock.now() + TWIN_LIFETIME)
        session.add(twin)
        session.flush()
        provision_test_account(session, twin, tier)
        for lic in session.scalars(select(License).where(License.user_id == customer.id,
                                                         License.status.in_(("active", "pending")))):
            licenses.create_license(session, owner=twin, actor=None, purchase_price=lic.purchase_price,
                                    purchased_version=lic.purchased_version,
                                    eligible_until_version=lic.eligible_until_version,
                                    max_activations=lic.max_activations, reason=f"Test copy of {lic.license_key}")
        audit.record(session, "testdata.twin_created", target=twin, is_test=True,
                     after={"twin_of": customer.email, "tier": tier})
    return twin


def provision_test_account(session, user: User, tier: str) -> None:
    """A test account's own subscription of `tier` with the tier's credits, priced at its margin.
    Without that tier in the catalogue (a bare database), only the balance row, on that tier."""
    try:
        subscriptions.provision(session, user, tier)
    except DomainError as error:
        if error.code != "unknown_tier":
            raise
        balances.ensure_balance(session, user.id, tier=tier if tier in TIERS else None)


def twin_of(session, user: User) -> User | None:
    return session.scalar(select(User).where(User.twin_of_id == user.id, User.deleted_at.is_(None)))
