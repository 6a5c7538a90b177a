"""Seed 001 Plan 109 for `flask seed`: the tiers, the credit packs, the seed's subscriptions
and the dunning example. Idempotent, and it works without Stripe: Stripe customers (the
seed's cus_pro_001 and cus_ent_001) are created in the emulator only when it answers.

Periods are laid relative to today so the demo stays alive: pro.user's current period is
30 days long with today its 15th day, so that an upgrade to Enterprise Pro previews as the
seed's 15 of 30 days, net 100.00.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.auth.service import hash_password
from app.billing import changes, collection, gateway, invoices, packs, periods, subscriptions, tiers
from app.billing.models import DunningAttempt, PaymentTransaction, PeriodAllocation, Subscription
from app.core import clock, testmode
from app.core.errors import DomainError
from app.credits.models import CreditAllocation
from app.users.models import User

# email, tier, customer with a card in the emulator
SUBSCRIPTIONS = [
    ("free.user@example.com", "free", False),
    ("pro.user@example.com", "pro", True),
    ("google.user@example.com", "pro", False),
    ("enterprise.user@example.com", "enterprise_pro", True),
    ("perpetual.user@example.com", "perpetual", False),
]
DUNNING_EMAIL = "dunning.user@example.com"
# Scenario 7 / the seed's dunning table: declined at renewal, +1 day and +4 days; next try +7.
DUNNING_ATTEMPTS = [(0, "renewal", "card_declined", "Your card was declined."),
                    (1, "scheduled", "insufficient_funds", "Your card has insufficient funds."),
                    (4, "scheduled", "expired_card", "Your card has expired.")]


def _stripe_available() -> bool:
    return gateway.uses_emulator() and gateway.reachable()


def _mark_allocated(session, sub: Subscription) -> None:
    """The credits seeder already gave the personas their period credits: record it so the
    allocation job does not allocate this period a second time."""
    has_credits = session.scalar(select(func.count()).select_from(CreditAllocation)
                                 .where(CreditAllocation.user_id == sub.user_id))
    if has_credits:
        session.add(PeriodAllocation(subscription_id=sub.id, user_id=sub.user_id, tier=sub.tier.name,
                                     period_start=sub.current_period_start, period_end=sub.current_period_end,
                                     allocated=sub.tier.monthly_credits, is_test=testmode.is_test_row(sub)))


def _pay_without_stripe(session, sub: Subscription, invoice) -> None:
    session.add(PaymentTransaction(user_id=sub.user_id, invoice_id=invoice.id, subscription_id=sub.id, kind="charge",
                                   amount=invoice.total, status="succeeded", is_test=testmode.is_test_row(sub),
                                   idempotency_key=f"seed-inv{invoice.id}"))
    invoices.mark_paid(invoice, invoice.total)


def _subscription(session, user: User, tier_name: str, with_card: bool, stripe_ok: bool, all_tiers, log) -> None:
    today = periods.start_of_day(clock.now().date())
    tier = all_tiers[tier_name]
    if user.email == "pro.user@example.com":
        sub = subscriptions.new_subscription(session, user, tier, start=today - timedelta(days=14))
        sub.current_period_end = sub.current_period_start + timedelta(days=30) - periods.ONE_SECOND
    else:
        sub = subscriptions.new_subscription(session, user, tier, start=today - timedelta(days=5))
    _mark_allocated(session, sub)
    invoice = invoices.period_invoice(session, sub) if tier.monthly_price > 0 else None
    session.flush()
    if invoice is not None and with_card and stripe_ok:
        session.commit()
        try:
            changes.attach_card(session, None, sub, "4242424242424242", reason="seed: test card")
            if invoice.status == "open":
                collection.collect(session, invoice, trigger="signup")
        except DomainError as error:
            log(f"  stripe emulator refused the seed payment for {user.email}: {error.message}")
    if invoice is not None and invoice.status == "open":
        _pay_without_stripe(session, sub, invoice)
    log(f"  {user.email}: {tier_name} subscription" + (f" (Stripe customer {sub.stripe_customer_id})"
                                                      if sub.stripe_customer_id else ""))


def _dunning_example(session, all_tiers, log) -> None:
    user = session.scalar(select(User).where(User.email == DUNNING_EMAIL))
    if user is None:
        user = User(email=DUNNING_EMAIL, first_name="Dunning", last_name="Example", username="dunninguser",
                    account_type="test", email_verified=True, password_hash=hash_password("TestPassword123!"))
        session.add(user)
        session.flush()
    if subscriptions.live_subscription(session, user.id) is not None:
        return
    start = periods.start_of_day(clock.now().date()) - timedelta(days=5)
    sub = subscriptions.new_subscription(session, user, all_tiers["pro"], start=start, status="past_due")
    invoice = invoices.period_invoice(session, sub)
    invoice.first_failed_at, invoice.attempt_count = start, len(DUNNING_ATTEMPTS)
    invoice.next_retry_at = start + timedelta(days=7)
    session.flush()
    for number, (day, trigger, code, message) in enumerate(DUNNING_ATTEMPTS):
        at = start + timedelta(days=day)
        payment = PaymentTransaction(user_id=user.id, invoice_id=invoice.id, subscription_id=sub.id, kind="charge",
                                     amount=Decimal("99.99"), status="failed", failure_code=code,
                                     failure_message=message, idempotency_key=f"seed-inv{invoice.id}-charge{number + 1}",
                                     is_test=True, created_at=at, updated_at=at)
        session.add(payment)
        session.flush()
        nxt = start + timedelta(days=DUNNING_ATTEMPTS[number + 1][0] if number + 1 < len(DUNNING_ATTEMPTS) else 7)
        session.add(DunningAttempt(subscription_id=sub.id, invoice_id=invoice.id, payment_id=payment.id,
                                   attempt_number=number, trigger=trigger, result="failed", failure_code=code,
                                   next_retry_at=nxt, is_test=True, created_at=at))
    log(f"  {DUNNING_EMAIL}: pro subscription past due, {len(DUNNING_ATTEMPTS)} failed attempts, next retry "
        f"{invoice.next_retry_at:%Y-%m-%d}")


def seed_billing(session, log=print) -> None:
    all_tiers = tiers.ensure_default_tiers(session)
    packs.ensure_default_packs(session)
    stripe_ok = _stripe_available()
    log(f"  billing: 6 tiers, credit packs; Stripe emulator {'available' if stripe_ok else 'not running'}")
    for email, tier_name, with_card in SUBSCRIPTIONS:
        user = session.scalar(select(User).where(User.email == email))
        if user is None or session.scalar(select(Subscription.id).where(Subscription.user_id == user.id)):
            continue
        _subscription(session, user, tier_name, with_card, stripe_ok, all_tiers, log)
    _dunning_example(session, all_tiers, log)
    session.flush()
