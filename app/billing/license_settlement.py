"""What a paid or failed license invoice means (called by collection.settle, whichever way
Stripe's answer arrives): a paid `license` invoice issues its pending license, a paid
`license_upgrade` invoice completes its upgrade; a failed one revokes the pending license or
fails the upgrade and voids the invoice, so nothing is left half-done. Each only moves a
pending row, so a repeated answer changes nothing."""
from __future__ import annotations

from sqlalchemy import select

from app.billing import invoices
from app.billing.models import Invoice, PaymentTransaction
from app.licensing import service as licensing
from app.licensing import upgrades
from app.licensing.models import License, LicenseUpgrade

KINDS = ("license", "license_upgrade")


def on_paid(session, invoice: Invoice, payment: PaymentTransaction) -> None:
    reference = payment.stripe_payment_intent_id or f"payment-{payment.id}"
    if invoice.kind == "license":
        lic = session.scalar(select(License).where(License.invoice_id == invoice.id))
        if lic is not None and lic.status == "pending":
            licensing.complete_purchase(session, lic, reference)
    else:
        upgrade = session.scalar(select(LicenseUpgrade).where(LicenseUpgrade.invoice_id == invoice.id))
        if upgrade is not None and upgrade.status == "pending":
            upgrades.complete_upgrade(session, upgrade, reference)


def on_abandoned(session, invoice: Invoice, payment: PaymentTransaction) -> None:
    why = f"payment failed: {payment.failure_message or payment.failure_code or 'declined'}"
    if invoice.kind == "license":
        lic = session.scalar(select(License).where(License.invoice_id == invoice.id))
        if lic is not None and lic.status == "pending":
            licensing.revoke(session, lic, actor=None, reason=why)
    else:
        upgrade = session.scalar(select(LicenseUpgrade).where(LicenseUpgrade.invoice_id == invoice.id))
        if upgrade is not None and upgrade.status == "pending":
            upgrades.fail_upgrade(session, upgrade, why)
    invoices.void(invoice)
