"""What staff and customers do to a subscription: create, change tier (previewed first),
cancel, reactivate, pause, and put a new card on file. Every action is validated before
anything is written, audited with its reason, and leaves nothing half-done: a tier change
that has to be paid for only takes effect once its charge succeeds.

The caller commits (core/forms.py); a step commits here only before a charge or a refund goes
to Stripe, so that the payment is never ahead of the state it pays for.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from app.billing import allocation, collection, gateway, invoices, periods, proration, refunds, subscriptions, tiers
from app.billing.gateway import GatewayError
from app.billing.invoices import Line
from app.billing.models import BILLING_CYCLES, Invoice, ProrationEvent, Subscription
from app.core import audit, clock, testmode
from app.core.audit import require_reason
from app.core.errors import Conflict, DomainError
from app.credits import margins
from app.users.models import User

CHANGEABLE = ("active", "trial")


def _reason(reason: str | None, required: bool) -> str | None:
    """Staff give a reason (require_reason); a customer's own change may have none."""
    return require_reason(reason) if required else ((reason or "").strip() or None)


def parse_effective(raw, field: str = "effective_date") -> datetime | None:
    """None, a datetime, 'YYYY-MM-DD' (midnight UTC) or an ISO 8601 timestamp."""
    if raw in (None, ""):
        return None
    if isinstance(raw, datetime):
        return clock.as_utc(raw)
    if isinstance(raw, date):
        return periods.start_of_day(raw)
    text = str(raw).strip()
    try:
        if len(text) == 10:
            return periods.start_of_day(date.fromisoformat(text))
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError("invalid_date", "Give the date as YYYY-MM-DD or an ISO 8601 time.", field) from None
    if value.tzinfo is None:
        raise DomainError("invalid_date", "Give the time with its UTC offset (for example Z).", field)
    return clock.as_utc(value)


def find_user(session, email: str | None) -> User:
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise DomainError("unknown_user", "No user has that email.", "email")
    return user


def create(session, actor, user, *, tier_name: str, cycle: str = "monthly", reason: str | None = None,
           payment_method: str | None = None, staff: bool = True) -> Subscription:
    """A new subscription whose first period is invoiced (and charged when a card is given)."""
    tier = tiers.get_tier(session, tier_name)
    if cycle not in BILLING_CYCLES:
        raise DomainError("invalid_billing_cycle", "The billing cycle is monthly or annual.", "billing_cycle")
    reason = _reason(reason, staff)
    if not tier.is_active:
        raise DomainError("tier_unavailable", f"The {tier.display_name} tier is not offered.", "tier")
    margins.require_margin(session, tier.name, tier.display_name, "tier")
    existing = subscriptions.live_subscription(session, user.id)
    if existing is not None:
        raise Conflict("subscription_exists", f"{user.email} already has a {existing.tier.name} subscription "
                       f"({existing.status}); change its tier instead.", "user")
    sub = subscriptions.new_subscription(session, user, tier, cycle)
    audit.record(session, "billing.subscription_created", actor=actor, target=sub, target_type="subscription",
                 after=sub.snapshot(), reason=reason)
    invoice = invoices.period_invoice(session, sub)
    if invoice.status == "paid":
        allocation.allocate_period(session, sub)
    session.commit()
    if payment_method:
        attach_card(session, actor, sub, payment_method, reason=reason or "card given at sign-up")
    elif invoice.status == "open" and collection.can_charge(sub):
        collection.collect(session, invoice, trigger="signup", actor=actor)
    return sub


def _check_changeable(sub: Subscription) -> None:
    if sub.status == "cancelled":
        raise Conflict("subscription_cancelled", "This subscription is cancelled; reactivate it first.", "subscription")
    if sub.status not in CHANGEABLE:
        raise Conflict("subscription_not_changeable",
                       f"A {sub.status.replace('_', ' ')} subscription cannot change tier; "
                       + ("settle its open invoice first." if sub.status in ("past_due", "grace_period")
                          else "resume it first."), "subscription")


def preview_change(session, sub: Subscription, to_tier: str, effective=None) -> proration.Quote:
    """The quote of DESIGN.md §4, without writing anything."""
    _check_changeable(sub)
    new = tiers.get_tier(session, to_tier, "to_tier")
    if new.id == sub.tier_id:
        raise DomainError("same_tier", f"The subscription is already on {new.display_name}.", "to_tier")
    if not new.is_active:
        raise DomainError("tier_unavailable", f"The {new.display_name} tier is not offered.", "to_tier")
    margins.require_margin(session, new.name, new.display_name, "to_tier")
    old = sub.tier
    old_price, new_price = old.price_for(sub.billing_cycle), new.price_for(sub.billing_cycle)
    change_type = "upgrade" if (new_price, new.rank) > (old_price, old.rank) else "downgrade"
    effective = parse_effective(effective) or clock.now()
    return proration.compute(from_tier=old.name, to_tier=new.name, old_price=old_price, new_price=new_price,
                             period_start=sub.current_period_start, period_end=sub.current_period_end,
                             effective=effective, change_type=change_type, old_credits=old.monthly_credits,
                             new_credits=new.monthly_credits)


def _event(sub: Subscription, quote: proration.Quote, actor, reason: str | None) -> ProrationEvent:
    return ProrationEvent(subscription_id=sub.id, user_id=sub.user_id, from_tier=quote.from_tier,
                          to_tier=quote.to_tier, change_type=quote.change_type, days_remaining=quote.days_remaining,
                          days_in_cycle=quote.days_in_cycle, unused_credit_value=quote.unused_credit_value,
                          new_tier_prorated_cost=quote.new_tier_prorated_cost, net_charge=quote.net_charge,
                          credits_granted=quote.credits_difference, effective_date=quote.effective_date,
                          status="pending", created_by_id=getattr(actor, "id", None), reason=reason,
                          is_test=testmode.is_test_row(sub))


def _proration_invoice(session, sub: Subscription, quote: proration.Quote) -> Invoice:
    days = f"{quote.days_remaining} of {quote.days_in_cycle} days"
    lines = [Line("proration_credit", f"Unused time on {quote.from_tier} ({days})", -quote.unused_credit_value)]
    if quote.to_tier:
        lines.append(Line("proration_charge", f"Remaining time on {quote.to_tier} ({days})",
                          quote.new_tier_prorated_cost))
    return invoices.build(session, user_id=sub.user_id, subscription=sub, kind="proration", lines=lines,
                          period_start=quote.effective_date, period_end=sub.current_period_end)


def change_tier(session, actor, sub: Subscription, to_tier: str, *, effective=None,
                reason: str | None = None, staff: bool = True) -> ProrationEvent:
    """Apply a previewed change. An upgrade charged to a card on file only takes effect
    when the charge succeeds (a decline raises card_declined and leaves the old tier); a
    downgrade refunds the difference against the last payment, or credits the next invoice."""
    reason = _reason(reason, staff)
    quote = preview_change(session, sub, to_tier, effective)
    if quote.net_charge > 0 and not staff and not collection.can_charge(sub):
        # A customer's upgrade is paid before it applies; staff may still leave the invoice open.
        raise Conflict("no_payment_method", f"This change costs {quote.net_charge}: add a card first "
                       "(payment_method).", "payment_method")
    before = sub.snapshot()
    event = _event(sub, quote, actor, reason)
    invoice = _proration_invoice(session, sub, quote)
    event.invoice_id = invoice.id
    session.add(event)
    audit.record(session, "billing.subscription_tier_change", actor=actor, target=sub, target_type="subscription",
                 before=before, after={**quote.as_dict(), "invoice": invoice.number}, reason=reason)
    if quote.net_charge > 0 and collection.can_charge(sub):
        session.commit()
        payment = collection.collect(session, invoice, trigger="proration", actor=actor)
        if payment.status == "failed":
            raise DomainError(payment.failure_code or "card_declined",
                              f"The charge of {quote.net_charge} was declined ({payment.failure_message or 'card declined'}); "
                              "the subscription stays on its current tier.", "payment_method", status=402)
        return event
    subscriptions.apply_proration(session, event)
    session.commit()
    if quote.net_charge < 0:
        refunds.credit_back(session, sub, invoice, -quote.net_charge, actor=actor, reason=reason or "tier change")
    return event


def cancel(session, actor, sub: Subscription, *, at_period_end: bool, reason: str | None = None,
           effective=None, staff: bool = True) -> ProrationEvent | None:
    """At period end: no refund, renewal stops. Now: the unused part is refunded (§4)."""
    reason = _reason(reason, staff)
    if sub.status == "cancelled":
        raise Conflict("subscription_cancelled", "This subscription is already cancelled.", "subscription")
    before = sub.snapshot()
    if at_period_end:
        sub.cancel_at_period_end = True
        audit.record(session, "billing.subscription_cancel_scheduled", actor=actor, target=sub,
                     target_type="subscription", before=before, after=sub.snapshot(), reason=reason)
        return None
    unpaid = [i for i in invoices.for_subscription(session, sub.id) if i.status == "open" and i.total > 0]
    price = sub.tier.price_for(sub.billing_cycle) if not unpaid else invoices.ZERO
    quote = proration.compute(from_tier=sub.tier.name, to_tier=None, old_price=price, new_price=invoices.ZERO,
                              period_start=sub.current_period_start, period_end=sub.current_period_end,
                              effective=parse_effective(effective) or clock.now(), change_type="cancellation")
    event = _event(sub, quote, actor, reason)
    invoice = _proration_invoice(session, sub, quote)
    event.invoice_id = invoice.id
    session.add(event)
    for open_invoice in unpaid:
        invoices.void(open_invoice)
    subscriptions.apply_proration(session, event)
    sub.grace_until = None
    audit.record(session, "billing.subscription_cancelled", actor=actor, target=sub, target_type="subscription",
                 before=before, after={**sub.snapshot(), **quote.as_dict(), "voided": [i.number for i in unpaid]},
                 reason=reason)
    session.commit()
    if quote.net_charge < 0:
        refunds.credit_back(session, sub, invoice, -quote.net_charge, actor=actor, reason=reason or "cancellation")
    return event


def reactivate(session, actor, sub: Subscription, *, reason: str | None = None, staff: bool = True) -> Subscription:
    reason = _reason(reason, staff)
    before = sub.snapshot()
    invoice = None
    if sub.status == "cancelled":
        other = subscriptions.live_subscription(session, sub.user_id)
        if other is not None and other.id != sub.id:
            raise Conflict("subscription_exists", "The user has another live subscription.", "subscription")
        sub.status, sub.cancelled_at, sub.cancel_at_period_end = "active", None, False
        subscriptions.restart_period(sub)
        invoice = invoices.period_invoice(session, sub)
    elif sub.status == "paused":
        sub.status, sub.paused_at = "active", None
        if sub.current_period_end < clock.now():
            subscriptions.restart_period(sub)
            invoice = invoices.period_invoice(session, sub)
    elif sub.cancel_at_period_end:
        sub.cancel_at_period_end = False
    else:
        raise Conflict("not_reactivatable", f"This subscription is {sub.status} and not set to cancel.", "subscription")
    audit.record(session, "billing.subscription_reactivated", actor=actor, target=sub, target_type="subscription",
                 before=before, after=sub.snapshot(), reason=reason)
    if invoice is not None and invoice.status == "paid":
        allocation.allocate_period(session, sub)
    session.commit()
    if invoice is not None and invoice.status == "open" and collection.can_charge(sub):
        collection.collect(session, invoice, trigger="reactivation", actor=actor)
    return sub


def pause(session, actor, sub: Subscription, *, reason: str | None = None, staff: bool = True) -> Subscription:
    reason = _reason(reason, staff)
    if sub.status not in CHANGEABLE:
        raise Conflict("not_pausable", f"Only an active or trial subscription can be paused (this one is {sub.status}).",
                       "subscription")
    before = sub.snapshot()
    sub.status, sub.paused_at = "paused", clock.now()
    audit.record(session, "billing.subscription_paused", actor=actor, target=sub, target_type="subscription",
                 before=before, after=sub.snapshot(), reason=reason)
    return sub


def attach_card(session, actor, sub: Subscription, payment_method: str, *, reason: str | None = None,
                retry: bool = True) -> Subscription:
    """Put a card on file (a pm_ id from Stripe.js); unless told not to, an open invoice is
    retried at once: a new card from the customer can end dunning."""
    payment_method = (payment_method or "").strip()
    if not payment_method:
        raise DomainError("payment_method_required", "Give a payment method.", "payment_method")
    if sub.stripe_customer_id is None:
        sub.stripe_customer_id = gateway.create_customer(email=sub.user.email, user_id=sub.user_id,
                                                         is_test=testmode.is_test_row(sub),
                                                         idempotency_key=f"rephlo-sub{sub.id}-customer")
        session.commit()
    pm_id, last4 = gateway.attach_payment_method(customer_id=sub.stripe_customer_id, payment_method=payment_method,
                                                 is_test=testmode.is_test_row(sub))
    before = {"default_payment_method": sub.default_payment_method_id}
    sub.default_payment_method_id = pm_id
    audit.record(session, "billing.payment_method_updated", actor=actor, target=sub, target_type="subscription",
                 before=before, after={"default_payment_method": pm_id, "last4": last4}, reason=reason)
    session.commit()
    if retry:
        retry_open_invoice(session, actor, sub, trigger="card_update", quiet=True)
    return sub


def retry_open_invoice(session, actor, sub: Subscription, *, trigger: str = "manual", quiet: bool = False):
    """Staff "retry now", or the retry after a card change: collect the oldest open invoice."""
    invoice = session.scalar(select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.status == "open",
                                                   Invoice.total > 0).order_by(Invoice.id))
    if invoice is None:
        if quiet:
            return None
        raise Conflict("nothing_to_collect", "This subscription has no open invoice to collect.", "subscription")
    if actor is not None and trigger == "manual":
        audit.record(session, "billing.payment_retry", actor=actor, target=invoice, target_type="invoice",
                     after={"invoice": invoice.number, "amount": str(invoice.total - invoice.amount_paid)},
                     reason="retry now", is_test=testmode.is_test_row(invoice))
        session.commit()
    try:
        return collection.collect(session, invoice, trigger=trigger, actor=actor)
    except GatewayError:
        if quiet:
            return None
        raise
