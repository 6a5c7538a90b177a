"""Without credits.grant, a "Request credits" form files an approval request for an admin."""
from __future__ import annotations

from sqlalchemy import select

from app.credits import balances
from app.credits.models import CreditGrantRequest
from app.rbac.models import PermissionOverride


def test_support_without_grant_asks_and_an_admin_approves(login_as, make_user, session):
    customer = make_user(staff=False)
    balances.ensure_balance(session, customer.id)
    agent = make_user(roles=("support",))
    session.add(PermissionOverride(user_id=agent.id, permission="credits.grant", action="revoke", reason="training"))
    session.commit()
    support = login_as(user=agent)
    page = support.get(f"/admin/credits/users/{customer.id}").get_data(as_text=True)
    assert 'id="request-grant"' in page and 'id="grant"' not in page
    bad = support.post(f"/admin/credits/users/{customer.id}/grant-request", data={"amount": "0", "reason": "outage"})
    assert bad.status_code == 422 and session.query(CreditGrantRequest).count() == 0
    asked = support.post(f"/admin/credits/users/{customer.id}/grant-request", data={"amount": "5000", "reason": "outage"})
    assert asked.status_code == 302
    request = session.scalars(select(CreditGrantRequest)).one()
    assert request.status == "pending" and balances.get_balance(session, customer.id).bonus_credits == 0
    admin = login_as("admin")
    assert admin.post(f"/admin/credits/requests/{request.id}/approve", data={"note": "fine"}).status_code == 302
    assert balances.get_balance(session, customer.id).bonus_credits == 5000
