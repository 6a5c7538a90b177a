"""Ledgers and price history are append-only on PostgreSQL: a correction is a new row. Test
rows may be deleted (test-data cleanup), and deleting a test account takes its rows along."""
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.credits import grants, metering
from app.credits.models import CreditAllocation, CreditDeduction, CreditGrantRequest, TokenUsage
from app.users.models import User

pytestmark = pytest.mark.postgres


def test_ledger_rows_cannot_be_edited_or_deleted(priced, frozen_clock, funded):
    user = funded(subscription=1_000)
    metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "r1")
    for sql in ("UPDATE credit_deductions SET amount = 1", "DELETE FROM token_usage",
                "UPDATE model_prices SET input_price_per_million = 0", "DELETE FROM margin_audit_log",
                "UPDATE credit_allocations SET amount = amount + 1"):
        with pytest.raises(DBAPIError, match="append-only"), priced.begin_nested():
            priced.execute(text(sql))


def test_deleting_a_test_account_takes_its_ledgers_along(priced, frozen_clock, funded, make_user):
    tester = funded(subscription=300_000, test=True)
    ops, admin = make_user(roles=("ops",)), make_user(roles=("admin",))
    metering.calculate_and_deduct(priced, tester.id, "gpt-4-turbo", 500, 300, "r1")
    request = grants.grant(priced, ops, tester.id, 250_001, "Trial")["request"]
    grants.approve(priced, admin, request.id)
    grants.staff_deduct(priced, admin, tester.id, 7, "Correction")
    priced.flush()
    priced.execute(text("DELETE FROM users WHERE id = :id"), {"id": tester.id})
    for model in (TokenUsage, CreditDeduction, CreditAllocation, CreditGrantRequest):
        assert priced.scalar(select(func.count()).select_from(model).where(model.user_id == tester.id)) == 0


def test_a_production_customer_with_ledgers_cannot_be_hard_deleted(priced, frozen_clock, funded):
    user = funded(subscription=100)
    metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, "r1")
    with pytest.raises(DBAPIError, match="append-only"), priced.begin_nested():
        priced.execute(text("DELETE FROM users WHERE id = :id"), {"id": user.id})
    assert priced.get(User, user.id) is not None
