"""`flask seed` for billing: idempotent, Stripe customers only when the emulator answers."""
from app.billing.models import DunningAttempt, Subscription
from app.billing.seed import seed_billing
from app.core import clock
from app.credits.seed import seed_credits
from app.seed import seed_personas


def _seed(session):
    for seeder in (seed_personas, seed_credits, seed_billing):
        seeder(session, log=lambda *_: None)
    session.commit()


def test_seed_is_idempotent_and_lays_the_seed_out(app, session, stripe_down):
    _seed(session)
    _seed(session)
    subs = {s.user.email: s for s in session.query(Subscription)}
    assert {e: s.tier.name for e, s in subs.items()} == {
        "free.user@example.com": "free", "pro.user@example.com": "pro", "google.user@example.com": "pro",
        "enterprise.user@example.com": "enterprise_pro", "perpetual.user@example.com": "perpetual",
        "dunning.user@example.com": "pro"}
    pro = subs["pro.user@example.com"]
    assert pro.stripe_customer_id is None  # no emulator: seeding still works
    today = clock.now()
    assert (today - pro.current_period_start).days == 14  # today is day 15 of a 30-day period
    assert (pro.current_period_end - pro.current_period_start).days == 29
    dunning = subs["dunning.user@example.com"]
    assert dunning.status == "past_due"
    assert [a.failure_code for a in session.query(DunningAttempt).filter_by(subscription_id=dunning.id)
            .order_by(DunningAttempt.attempt_number)] == ["card_declined", "insufficient_funds", "expired_card"]
    assert all(s.is_test for s in subs.values())


def test_seed_creates_stripe_customers_when_the_emulator_runs(session):
    _seed(session)
    pro = session.query(Subscription).join(Subscription.user).filter_by(email="pro.user@example.com").one()
    assert pro.stripe_customer_id.startswith("cus_") and pro.default_payment_method_id.startswith("pm_")
