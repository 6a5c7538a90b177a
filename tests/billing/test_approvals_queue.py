"""Issue 18: one approvals queue. A support agent's refund request and credit grant request wait
in the same list (newest first, filterable by kind, counted in the navigation); an admin approves
one and declines the other (a reason is required), each decision audited."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from app.billing import collection, invoices, refunds
from app.billing.models import PaymentTransaction, RefundRequest
from app.core import clock
from app.core.audit import AuditEntry
from app.credits import balances, grants
from app.credits.models import CreditGrantRequest


def _requests(session, make_sub, make_user):
    sub = make_sub("pro", card="4242424242424242")
    collection.collect(session, invoices.period_invoice(session, sub), trigger="signup")
    payment = session.query(PaymentTransaction).filter_by(subscription_id=sub.id).one()
    agent = make_user(roles=("support",))
    refund = refunds.ask_for_refund(session, agent, payment, Decimal("10.00"), reason="charged twice")
    clock.freeze(clock.now() + timedelta(minutes=1))  # the grant request is the newer one
    balances.ensure_balance(session, sub.user_id)
    grant = grants.request_grant(session, agent, sub.user_id, 250_000, "outage week")
    session.commit()
    return sub, payment, refund, grant


def test_both_kinds_in_one_queue_newest_first_and_counted(login_as, make_sub, make_user, session):
    sub, payment, refund, grant = _requests(session, make_sub, make_user)
    try:
        admin = login_as("admin")
        page = admin.get("/admin/approvals").get_data(as_text=True)
        assert page.index(f'id="approval-credits-{grant.id}"') < page.index(f'id="approval-refund-{refund.id}"')
        assert "250,000 credits" in page and "Refund of $10.00" in page and "charged twice" in page
        assert 'aria-label="2 pending"' in page  # the navigation badge
        only_refunds = admin.get("/admin/approvals?kind=refund").get_data(as_text=True)
        assert f'id="approval-refund-{refund.id}"' in only_refunds and "approval-credits-" not in only_refunds
        only_grants = admin.get("/admin/approvals?kind=credits").get_data(as_text=True)
        assert f'id="approval-credits-{grant.id}"' in only_grants and "approval-refund-" not in only_grants
        old = admin.get("/admin/billing/refund-requests")  # the old refund queue now opens this one, filtered
        assert old.status_code == 302 and old.location.endswith("/admin/approvals?kind=refund")
    finally:
        clock.reset()


def test_an_admin_approves_the_grant_and_declines_the_refund_with_a_reason(login_as, sudo, make_sub, make_user,
                                                                           session):
    sub, payment, refund, grant = _requests(session, make_sub, make_user)
    try:
        admin = login_as("admin")
        unsudoed = admin.post(f"/admin/approvals/refund/{refund.id}/decline", data={"note": "duplicate"})
        assert "/auth/sudo" in unsudoed.location  # a refund decision needs sudo, like the refund itself
        sudo(admin)
        no_reason = admin.post(f"/admin/approvals/refund/{refund.id}/decline", data={"note": "  "},
                               follow_redirects=True)
        session.refresh(refund)
        assert refund.status == "pending" and "Give a reason (it goes in the audit log)." in no_reason.get_data(as_text=True)
        declined = admin.post(f"/admin/approvals/refund/{refund.id}/decline?kind=refund", data={"note": "duplicate"})
        assert declined.location.endswith("/admin/approvals?kind=refund")
        session.refresh(refund)
        session.refresh(payment)
        assert refund.status == "rejected" and refund.decision_note == "duplicate"
        assert payment.refunded_amount == Decimal("0.00")
        before = balances.get_balance(session, sub.user_id).bonus_credits
        assert admin.post(f"/admin/approvals/credits/{grant.id}/approve", data={"note": "ok"}).status_code == 302
        session.refresh(grant)
        assert grant.status == "approved"
        assert balances.get_balance(session, sub.user_id).bonus_credits == before + 250_000
        actions = set(session.scalars(select(AuditEntry.action)))
        assert {"billing.refund_rejected", "credits.grant_approved"} <= actions
        assert "Nothing waiting for approval." in admin.get("/admin/approvals").get_data(as_text=True)
        assert session.query(RefundRequest).filter_by(status="pending").count() == 0
        assert session.query(CreditGrantRequest).filter_by(status="pending").count() == 0
    finally:
        clock.reset()


def test_the_asker_sees_the_queue_but_cannot_decide(login_as, make_sub, make_user, session):
    sub, payment, refund, grant = _requests(session, make_sub, make_user)
    try:
        agent = session.get(type(grant.requested_by), grant.requested_by_id)
        client = login_as(user=agent)
        page = client.get("/admin/approvals").get_data(as_text=True)
        assert f'id="approval-refund-{refund.id}"' in page and "decision='approve'" not in page
        assert 'id="approve-note-' not in page and page.count("Waiting for another administrator") == 2
        assert client.post(f"/admin/approvals/refund/{refund.id}/approve").status_code == 403
        own = client.post(f"/admin/approvals/credits/{grant.id}/approve", data={}, follow_redirects=True)
        session.refresh(grant)
        assert grant.status == "pending" and "your own request" in own.get_data(as_text=True)
    finally:
        clock.reset()
