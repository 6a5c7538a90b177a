"""DESIGN.md §4 proration: the three seed events to the cent, and seed 001 scenario 4."""
from decimal import Decimal

import pytest

from app.billing import changes, proration
from app.billing.models import Invoice, ProrationEvent
from app.core.errors import DomainError
from app.credits import balances

from tests.billing.conftest import utc

NOV = dict(period_start=utc("2025-11-01T00:00:00"), period_end=utc("2025-11-30T23:59:59"))


@pytest.mark.parametrize("from_tier,to_tier,old,new,effective,change,remaining,unused,cost,net", [
    ("pro", "enterprise_pro", "99.99", "299.99", "2025-11-15", "upgrade", 15, "49.99", "149.99", "100.00"),
    ("enterprise_pro", "pro", "299.99", "99.99", "2025-11-20", "downgrade", 10, "99.99", "33.33", "-66.66"),
    ("pro", None, "99.99", "0.00", "2025-11-23", "cancellation", 7, "23.33", "0.00", "-23.33"),
])
def test_seed_proration_events(from_tier, to_tier, old, new, effective, change, remaining, unused, cost, net):
    quote = proration.compute(from_tier=from_tier, to_tier=to_tier, old_price=Decimal(old), new_price=Decimal(new),
                              effective=utc(effective + "T00:00:00"), change_type=change, **NOV)
    assert (quote.days_remaining, quote.days_in_cycle) == (remaining, 30)
    assert quote.unused_credit_value == Decimal(unused)
    assert quote.new_tier_prorated_cost == Decimal(cost)
    assert quote.net_charge == Decimal(net)
    assert quote.as_api()["net_charge_usd"] == net


def test_effective_date_must_fall_inside_the_period():
    with pytest.raises(DomainError) as err:
        proration.compute(from_tier="pro", to_tier="enterprise_pro", old_price=Decimal("99.99"),
                          new_price=Decimal("299.99"), effective=utc("2025-12-02T00:00:00"), change_type="upgrade",
                          **NOV)
    assert err.value.code == "effective_date_outside_period"


def test_scenario_4_mid_cycle_upgrade(session, make_sub):
    """Pro from 2025-11-01, upgrade on 11-15: 49.99 credit, 149.99 charge, net 100.00,
    Enterprise credits for the remaining 15 days, period end unchanged."""
    sub = make_sub("pro", allocate=True)
    assert balances.get_balance(session, sub.user_id).subscription_credits == 10_000
    preview = changes.preview_change(session, sub, "enterprise_pro", "2025-11-15")
    assert preview.as_api()["net_charge_usd"] == "100.00"
    assert session.query(ProrationEvent).count() == 0  # a preview writes nothing

    event = changes.change_tier(session, None, sub, "enterprise_pro", effective="2025-11-15", reason="scenario 4")
    assert event.status == "applied" and sub.tier.name == "enterprise_pro"
    assert (event.unused_credit_value, event.new_tier_prorated_cost, event.net_charge) == \
        (Decimal("49.99"), Decimal("149.99"), Decimal("100.00"))
    invoice = session.get(Invoice, event.invoice_id)
    assert invoice.kind == "proration" and invoice.total == Decimal("100.00") and invoice.status == "open"
    assert [line.amount for line in invoice.lines] == [Decimal("-49.99"), Decimal("149.99")]
    # (50,000 - 10,000) * 15 / 30 more subscription credits for the rest of the period
    assert event.credits_granted == 20_000
    assert balances.get_balance(session, sub.user_id).subscription_credits == 30_000
    assert sub.current_period_end == utc("2025-11-30T23:59:59")


def test_downgrade_refunds_the_last_payment(session, make_sub):
    sub = make_sub("enterprise_pro", card="4242424242424242")
    from app.billing import collection, invoices

    invoice = invoices.period_invoice(session, sub)
    session.commit()
    payment = collection.collect(session, invoice, trigger="signup")
    assert payment.status == "succeeded" and invoice.status == "paid"

    event = changes.change_tier(session, None, sub, "pro", effective="2025-11-20", reason="seed proration 2")
    assert event.net_charge == Decimal("-66.66") and event.status == "applied"
    credit = session.get(Invoice, event.invoice_id)
    assert credit.total == Decimal("-66.66") and credit.status == "paid"
    assert payment.refunded_amount == Decimal("66.66")


def test_cancellation_without_a_payment_credits_the_next_invoice(session, make_sub):
    sub = make_sub("pro")
    event = changes.cancel(session, None, sub, at_period_end=False, effective="2025-11-23", reason="seed proration 3")
    assert event.change_type == "cancellation" and event.net_charge == Decimal("-23.33")
    assert sub.status == "cancelled"
    credit = session.get(Invoice, event.invoice_id)
    assert credit.status == "open" and credit.total == Decimal("-23.33")
