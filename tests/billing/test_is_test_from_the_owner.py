"""DESIGN.md §3, issue 19: a row billing creates is in its owner's world, by the one rule
(testmode.is_test_row): a test customer's subscription, invoice, charge and period allocation
are test rows whoever acts; a live customer's are live rows; and a test actor cannot hang a
row off a live customer at all (the world guard refuses it, nothing is written)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import allocation, invoices, payments
from app.billing.models import Invoice
from app.billing.subscriptions import new_subscription
from app.core import testmode
from app.core.testmode import TestModeViolation


def _bill(session, sub):
    invoice = invoices.build(session, user_id=sub.user_id, subscription=sub, kind="credit_pack",
                             lines=[invoices.Line("credit_pack", "Starter pack", Decimal("5.00"))])
    return invoice, payments.start_charge(session, invoice), allocation.allocate_period(session, sub)


@pytest.mark.parametrize("test_mode", [False, True], ids=["live mode", "test mode"])
@pytest.mark.parametrize("test_owner", [False, True], ids=["live owner", "test owner"])
def test_billing_rows_are_in_their_owners_world(session, make_user, tiers, test_mode, test_owner):
    owner, newcomer = make_user(test=test_owner), make_user(test=test_owner)
    sub = new_subscription(session, owner, tiers["pro"])
    session.commit()
    with testmode.test_mode(test_mode):
        if test_mode and not test_owner:
            with pytest.raises(TestModeViolation):
                _bill(session, sub)
            session.rollback()
            with pytest.raises(TestModeViolation):
                new_subscription(session, newcomer, tiers["pro"])
            session.rollback()
            assert session.scalar(select(func.count(Invoice.id)).where(Invoice.user_id == owner.id)) == 0
            return
        rows = _bill(session, sub)
        created = new_subscription(session, newcomer, tiers["pro"])
    assert [type(row).__name__ for row in rows] == ["Invoice", "PaymentTransaction", "PeriodAllocation"]
    assert [row.is_test for row in (*rows, created)] == [test_owner] * 4
