"""Invoices: built here from line items (the app computes every amount), never by Stripe."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.billing.models import Invoice, InvoiceLine, Subscription
from app.core import clock, testmode

ZERO = Decimal("0.00")

# What other domains do to a new period invoice (coupons puts its pending discounts on it). They
# are plugged in by create_app, so billing imports none of them: coupons builds on billing.
PeriodInvoiceHook = Callable[[Session, Invoice], Invoice]
_period_invoice_hooks: dict[str, PeriodInvoiceHook] = {}


def on_period_invoice(name: str, hook: PeriodInvoiceHook) -> None:
    """Run `hook` on every new period invoice (one per name: create_app runs once per app)."""
    _period_invoice_hooks[name] = hook


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    amount: Decimal
    quantity: int = 1


def build(session, *, user_id: int, subscription: Subscription | None, kind: str, lines: list[Line],
          period_key: str | None = None, period_start: datetime | None = None,
          period_end: datetime | None = None) -> Invoice:
    """An open invoice (paid at once when it totals zero), in its subscription's world (testmode.is_test_row)."""
    subtotal = sum((line.amount for line in lines), ZERO)
    invoice = Invoice(user_id=user_id, subscription_id=subscription.id if subscription else None, kind=kind,
                      period_key=period_key, period_start=period_start, period_end=period_end,
                      subtotal=subtotal, total=subtotal, status="open", due_at=clock.now(),
                      is_test=testmode.is_test_row(subscription))
    for line in lines:
        invoice.lines.append(InvoiceLine(kind=line.kind, description=line.description[:255], quantity=line.quantity,
                                         unit_amount=line.amount, amount=line.amount * line.quantity))
    if subtotal == ZERO:
        invoice.status, invoice.paid_at = "paid", clock.now()
    session.add(invoice)
    session.flush()
    return invoice


def period_key(start: datetime) -> str:
    return start.date().isoformat()


def find_period_invoice(session, subscription_id: int, start: datetime) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.subscription_id == subscription_id,
                                                Invoice.period_key == period_key(start)))


def mark_paid(invoice: Invoice, amount: Decimal) -> None:
    invoice.amount_paid = (invoice.amount_paid or ZERO) + amount
    if invoice.amount_paid >= invoice.total:
        invoice.status, invoice.paid_at, invoice.next_retry_at = "paid", clock.now(), None


def void(invoice: Invoice) -> None:
    if invoice.status in ("draft", "open"):
        invoice.status, invoice.voided_at, invoice.next_retry_at = "void", clock.now(), None


def open_credits(session, subscription_id: int) -> list[Invoice]:
    """Open negative invoices (a downgrade or cancellation refund that had no payment to
    refund against): they are credited on the next period invoice."""
    return list(session.scalars(select(Invoice).where(Invoice.subscription_id == subscription_id,
                                                      Invoice.status == "open", Invoice.total < 0)
                                .order_by(Invoice.id)))


def for_subscription(session, subscription_id: int) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.subscription_id == subscription_id)
                                .order_by(Invoice.created_at.desc(), Invoice.id.desc())))


def period_invoice(session, sub: Subscription) -> Invoice:
    """The invoice of the subscription's current period, created once (period_key is
    unique per subscription); open credits from earlier downgrades and pending coupon
    discounts are applied to it."""
    existing = find_period_invoice(session, sub.id, sub.current_period_start)
    if existing is not None:
        return existing
    price = sub.tier.price_for(sub.billing_cycle)
    lines = [Line("subscription", f"{sub.tier.display_name} ({sub.billing_cycle}) "
                  f"{sub.current_period_start:%Y-%m-%d} to {sub.current_period_end:%Y-%m-%d}", price)]
    total = price
    for credit in open_credits(session, sub.id):
        if total + credit.total < 0:
            continue  # a credit larger than what is due waits for a later invoice
        total += credit.total
        lines.append(Line("credit_applied", f"Credit from {credit.number}", credit.total))
        credit.status, credit.amount_paid, credit.paid_at = "paid", credit.total, clock.now()
    invoice = build(session, user_id=sub.user_id, subscription=sub, kind="period", lines=lines,
                    period_key=period_key(sub.current_period_start), period_start=sub.current_period_start,
                    period_end=sub.current_period_end)
    for hook in _period_invoice_hooks.values():
        invoice = hook(session, invoice)
    return invoice
