"""What the customer's page shows and the few things it changes, through the domains' services.

A customer may deactivate their own devices (a client action, rate-limited like the app's),
and make and revoke their own API keys: sandbox and development keys freely, a live key only
once their email address is confirmed.
"""
from __future__ import annotations

from sqlalchemy import select

from app.billing.models import Invoice
from app.billing.subscriptions import live_subscription
from app.core.errors import DomainError, NotFound
from app.credits.balances import get_balance
from app.licensing import activations
from app.licensing.models import License
from app.api import keys as key_service
from app.api.models import ApiKey

INVOICES_SHOWN = 24


def overview(session, user) -> dict:
    licenses = list(session.scalars(select(License).where(License.user_id == user.id).order_by(License.id.desc())))
    return {
        "subscription": live_subscription(session, user.id),
        "balance": get_balance(session, user.id),
        "licenses": [(lic, activations.devices(session, lic.id)) for lic in licenses],
        "invoices": list(session.scalars(select(Invoice).where(Invoice.user_id == user.id)
                                         .order_by(Invoice.id.desc()).limit(INVOICES_SHOWN))),
        "keys": key_service.keys_of(session, user.id),
    }


def deactivate_device(session, user, license_id: int, activation_id: int):
    lic = session.get(License, license_id)
    if lic is None or lic.user_id != user.id:
        raise NotFound("license", "license_id")
    return activations.deactivate(session, lic, activation_id=activation_id, source="client", actor=user)


def create_key(session, user, *, name: str, key_type: str) -> tuple[ApiKey, str]:
    if key_type == "production" and not user.email_verified:
        raise DomainError("email_not_verified", "Confirm your email address before making a live key "
                          "(sandbox and development keys work now).", "key_type", status=403)
    return key_service.create_api_key(session, user, owner=user, name=name, key_type=key_type, sudo=True)


def revoke_key(session, user, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != user.id:
        raise NotFound("API key", "key_id")
    return key_service.revoke_api_key(session, user, key, "Revoked by the customer on their account page")
