"""Buying a perpetual license or a paid upgrade, and subscribing from free with a card: each
charged by a PaymentIntent for an invoice of its own before anything is granted.

The pending license (or upgrade) and its invoice are committed first, then the card on file
is charged (collection.collect). The license is issued, the upgrade completed, only when the
payment succeeds: in the same request or later by the verified webhook
(license_settlement.py). A declined card answers 402 and leaves nothing half-done. A card may
come with the request (a pm_ id from Stripe.js) and is then put on file first.
"""
from __future__ import annotations

from decimal import Decimal

from flask import current_app

from app.billing import changes, collection, invoices, subscriptions
from app.billing.invoices import Line
from app.billing.models import Subscription
from app.core import clock
from app.core.errors import Conflict, DomainError
from app.core.money import usd
from app.licensing import service as licensing
from app.licensing import upgrades
from app.licensing.models import AppVersion, License, LicenseUpgrade


def _card_on_file(session, user, payment_method: str | None) -> Subscription:
    sub = subscriptions.live_subscription(session, user.id)
    if payment_method:
        sub = sub or subscriptions.provision_free(session, user)  # the card lives on the subscription
        changes.attach_card(session, user, sub, payment_method, reason="card given with a purchase", retry=False)
    if not collection.can_charge(sub):
        raise Conflict("no_payment_method", "There is no card on file to charge: send a payment_method or add a "
                       "card first.", "payment_method")
    return sub


def _declined(payment, amount: Decimal, what: str) -> DomainError:
    return DomainError(payment.failure_code or "card_declined",
                       f"The charge of {usd(amount)} was declined ({payment.failure_message or 'card declined'}); {what}",
                       "payment_method", status=402)


def license_price() -> Decimal:
    return Decimal(str(current_app.config["PERPETUAL_LICENSE_PRICE"]))


def current_version(session) -> AppVersion:
    today = clock.now().date()
    for row in upgrades.list_versions(session):
        if not row.parsed.is_prerelease and row.release_date <= today:
            return row
    raise DomainError("no_version_released", "No version of the app is released yet.", None, status=409)


def buy_license(session, user, *, payment_method: str | None = None) -> License:
    """A perpetual license of the current version (updates until the next major), paid at once."""
    version, price = current_version(session), license_price()
    sub = _card_on_file(session, user, payment_method)
    lic = licensing.create_license(session, owner=user, actor=user, purchase_price=price,
                                   purchased_version=version.version, status="pending", reason="bought")
    invoice = invoices.build(session, user_id=user.id, subscription=sub, kind="license",
                             lines=[Line("license", f"Perpetual license, version {version.version}", price)])
    lic.invoice_id = invoice.id
    session.commit()
    payment = collection.collect(session, invoice, trigger="license_purchase", actor=user)
    if payment.status == "failed":
        raise _declined(payment, price, "no license was issued.")
    return lic


def buy_upgrade(session, user, lic: License, to_version: str, *, payment_method: str | None = None,
                field: str = "to_version") -> LicenseUpgrade:
    """The upgrade at its quoted price (DESIGN.md §4), completed only once paid."""
    upgrades.quote(session, lic, to_version, field=field)  # a bad target is refused before any card work
    sub = _card_on_file(session, user, payment_method)
    upgrade = upgrades.create_upgrade(session, lic, to_version, actor=user, field=field)
    invoice = invoices.build(session, user_id=user.id, subscription=sub, kind="license_upgrade",
                             lines=[Line("license_upgrade", f"Upgrade of {lic.license_key[:9]}… to {upgrade.to_version}"
                                         f" ({upgrade.pricing_rule})", upgrade.price)])
    upgrade.invoice_id = invoice.id
    session.commit()
    payment = collection.collect(session, invoice, trigger="license_upgrade", actor=user)
    if payment.status == "failed":
        raise _declined(payment, upgrade.price, "the license is unchanged.")
    return upgrade


def subscribe(session, user, tier: str, *, payment_method: str | None = None):
    """From free to a paid tier with a card: the prorated first charge is taken before the tier
    changes (changes.change_tier); a decline leaves the customer where they were."""
    sub = subscriptions.live_subscription(session, user.id) or subscriptions.provision_free(session, user)
    changes.preview_change(session, sub, tier, None)  # an unknown or same tier is refused before any card work
    sub = _card_on_file(session, user, payment_method)
    return changes.change_tier(session, user, sub, tier, staff=False)
