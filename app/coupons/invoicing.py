"""Coupon discounts on billing's invoices.

A discount redeemed for a subscription goes on the subscription's open period invoice when
nothing has been charged on it yet (the checkout case: redemption success, invoice total
lowered at once). Otherwise it waits as a `pending` redemption for the next period invoice,
which billing builds through invoices.period_invoice(); that calls apply_pending() and the
redemption becomes `success`. An invoice smaller than the promised discount caps it, and
the campaign budget gets the difference back, so `spent` stays what customers really got.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from app.billing import allocation
from app.billing.invoices import find_period_invoice
from app.billing.models import Invoice, Subscription
from app.core import clock
from app.coupons.models import Campaign, Redemption

ZERO = Decimal("0.00")


def open_invoice(session, subscription_id: int):
    """The subscription's current period invoice if a discount can still change it."""
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        return None
    invoice = find_period_invoice(session, sub.id, sub.current_period_start)
    if invoice is None or invoice.status != "open" or invoice.attempt_count or invoice.amount_paid or invoice.total <= 0:
        return None
    return invoice


def _give_back(session, row: Redemption, amount: Decimal) -> None:
    if row.campaign_id is None or amount <= 0:
        return
    spent = Campaign.test_spent if row.is_test else Campaign.spent
    session.execute(update(Campaign).where(Campaign.id == row.campaign_id, spent >= amount)
                    .values({spent: spent - amount}).execution_options(synchronize_session=False))
    row.budget_cost = row.budget_cost - amount


def put_on(session, row: Redemption, invoice, *, budget_taken: bool = True) -> Decimal:
    """Take the redemption's discount off the invoice (capped at what is left to pay). At
    redemption time the budget is not taken yet (budget_taken=False): the lower cost is what
    will be taken, and the campaign row is not locked out of turn."""
    applied = min(row.discount_amount, max(invoice.total, ZERO))
    if applied < row.discount_amount:
        if budget_taken:
            _give_back(session, row, row.discount_amount - applied)
        else:
            row.budget_cost = row.budget_cost - (row.discount_amount - applied)
        row.discount_amount, row.final_amount = applied, row.original_amount - applied
    invoice.discount = (invoice.discount or ZERO) + applied
    invoice.total = invoice.total - applied
    row.invoice_id, row.status = invoice.id, "success"
    if invoice.total == ZERO and invoice.status == "open":
        invoice.status, invoice.paid_at, invoice.next_retry_at = "paid", clock.now(), None
    return applied


def apply_now(session, row: Redemption) -> None:
    """At redemption time: onto the open invoice, or pending for the next one."""
    invoice = open_invoice(session, row.subscription_id)
    if invoice is None:
        row.status = "pending"
        return
    put_on(session, row, invoice, budget_taken=False)
    if invoice.status == "paid" and invoice.kind == "period":
        allocation.allocate_period(session, session.get(Subscription, row.subscription_id))


def apply_pending(session, invoice):
    """Billing's hook for a new period invoice: every pending discount of its subscription."""
    if invoice.discount is None:
        invoice.discount = ZERO
    if invoice.subscription_id is None:
        return invoice
    rows = session.scalars(select(Redemption).where(
        Redemption.subscription_id == invoice.subscription_id, Redemption.status == "pending",
        Redemption.invoice_id.is_(None)).order_by(Redemption.id))
    for row in rows:
        put_on(session, row, invoice)
    session.flush()
    return invoice


def revert(session, row: Redemption) -> None:
    """A reversed discount that is still pending simply never reaches an invoice; one already
    on an open (unpaid) invoice comes off it again. A paid invoice is billing's to refund."""
    if row.invoice_id is None or row.discount_amount <= 0:
        return

    invoice = session.get(Invoice, row.invoice_id)
    if invoice is not None and invoice.status == "open" and not invoice.amount_paid:
        invoice.discount = (invoice.discount or ZERO) - row.discount_amount
        invoice.total = invoice.total + row.discount_amount
