"""Support cannot refund but can ask: the request waits in the admin queue, which approves or
declines it; every step audited (issue 18: the refund simply disappeared for support)."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.billing import collection, invoices
from app.billing.models import PaymentTransaction, RefundRequest
from app.core.audit import AuditEntry


def test_support_requests_a_refund_an_admin_approves_it(login_as, sudo, make_sub, session):
    sub = make_sub("pro", card="4242424242424242")
    collection.collect(session, invoices.period_invoice(session, sub), trigger="signup")
    payment = session.query(PaymentTransaction).filter_by(subscription_id=sub.id).one()
    support = login_as("support")
    session.commit()
    page = support.get(f"/admin/billing/subscriptions/{sub.id}").get_data(as_text=True)
    assert f'id="request-refund-{payment.id}"' in page and "Refund (needs sudo)" not in page
    url = f"/admin/billing/subscriptions/{sub.id}/refund-request"
    bad = support.post(url, data={"payment_id": payment.id, "amount": "5000", "reason": "charged twice"})
    assert bad.status_code == 422 and session.query(RefundRequest).count() == 0
    asked = support.post(url, data={"payment_id": payment.id, "amount": "10.00", "reason": "charged twice"})
    assert asked.status_code == 302
    request = session.scalars(select(RefundRequest)).one()
    assert (request.status, request.amount, payment.refunded_amount) == ("pending", Decimal("10.00"), 0)
    admin = sudo(login_as("admin"))
    queue = admin.get("/admin/approvals").get_data(as_text=True)  # the one approvals queue
    assert "charged twice" in queue and f'id="approval-refund-{request.id}"' in queue
    assert admin.post(f"/admin/approvals/refund/{request.id}/approve", data={"note": "ok"}).status_code == 302
    session.refresh(payment)
    assert request.status == "approved" and payment.refunded_amount == Decimal("10.00")
    actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "refund_request")))
    assert {"billing.refund_requested", "billing.refund_approved"} <= actions
