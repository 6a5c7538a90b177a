"""Staff: "New customer" and the CSV import (dry run report, all-or-nothing, audited, two worlds)."""
from __future__ import annotations

import io

from sqlalchemy import func, select

from app.billing.subscriptions import live_subscription
from app.core.audit import AuditEntry
from app.notifications.models import OutboxMessage
from app.users.models import User

GOOD = "email,name,external_id\nann@example.com,Ann Able,old-1\nbob@example.com,Bob Baker,old-2\n"


def _users(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def test_new_customer_is_production_on_the_free_tier_and_invited(session, login_as, tiers):
    staff = login_as("ops")
    assert "New customer" in staff.get("/admin/users").get_data(as_text=True)
    response = staff.post("/admin/customers/new", data={"email": "Neo@Example.com", "name": "Neo N",
                                                        "external_id": "crm-9"})
    assert response.status_code == 302
    user = session.scalar(select(User).where(User.email == "neo@example.com"))
    assert not user.is_test and user.external_id == "crm-9" and live_subscription(session, user.id).tier.name == "free"
    assert session.scalar(select(OutboxMessage.kind).where(OutboxMessage.user_id == user.id)) == "account_welcome"
    assert session.scalar(select(AuditEntry.actor_id).where(AuditEntry.action == "accounts.customer_created",
                                                            AuditEntry.target_id == str(user.id))) == staff.user.id


def test_new_customer_refuses_bad_input_and_a_taken_email(session, login_as, tiers, make_user):
    staff = login_as("ops")
    before = _users(session)
    bad = staff.post("/admin/customers/new", data={"email": "nope"})
    assert bad.status_code == 422
    taken = staff.post("/admin/customers/new", data={"email": make_user().email})
    assert taken.status_code == 409 and "exists already" in taken.get_data(as_text=True)
    assert _users(session) == before + 1  # only make_user's


def test_a_test_persona_makes_test_accounts(session, login_as, make_user, tiers):
    persona = login_as(user=make_user(roles=("ops",), test=True))
    assert persona.post("/admin/customers/new", data={"email": "tina@example.com"}).status_code == 302
    assert session.scalar(select(User.is_test).where(User.email == "tina@example.com")) is True


def test_csv_dry_run_reports_per_row_and_the_import_is_all_or_nothing(session, login_as, tiers, make_user):
    staff = login_as("ops")
    taken = make_user().email
    bad = GOOD + f"{taken},Taken,old-3\nnot-an-email,X,old-4\nann@example.com,Again,old-5\n"
    before = _users(session)
    report = staff.post("/admin/customers/import", data={"action": "dry_run",
                                                          "csv_file": (io.BytesIO(bad.encode()), "old.csv")})
    page = report.get_data(as_text=True)
    assert report.status_code == 422 and "3 of 5 rows need fixing" in page
    assert "exists already" in page and "valid email" in page and "Same email as row 2" in page
    forced = staff.post("/admin/customers/import", data={"action": "import", "csv_text": bad})
    assert forced.status_code == 422 and _users(session) == before

    dry = staff.post("/admin/customers/import", data={"action": "dry_run", "csv_text": GOOD})
    assert dry.status_code == 200 and "2 rows are ready to import" in dry.get_data(as_text=True)
    assert _users(session) == before
    done = staff.post("/admin/customers/import", data={"action": "import", "csv_text": GOOD})
    assert done.status_code == 302 and _users(session) == before + 2
    ann = session.scalar(select(User).where(User.external_id == "old-1"))
    assert ann.email == "ann@example.com" and live_subscription(session, ann.id).tier.name == "free"
    assert session.scalar(select(AuditEntry.after).where(AuditEntry.action == "accounts.customers_imported"))["count"] == 2


def test_import_refuses_a_file_without_an_email_column(login_as, tiers):
    staff = login_as("ops")
    response = staff.post("/admin/customers/import", data={"action": "dry_run", "csv_text": "name\nAnn\n"})
    assert response.status_code == 422 and "email column" in response.get_data(as_text=True)


def test_support_may_not_create_customers(login_as):
    assert login_as("support").get("/admin/customers/new").status_code == 403
