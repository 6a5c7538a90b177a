"""Sudo resume: the refund that asked for sudo completes after the code, with the reason typed
(issue 18: it was dropped and the reason lost); secrets are never kept for the replay."""
from __future__ import annotations

import re
from decimal import Decimal

from app.billing import collection, invoices
from app.billing.models import PaymentTransaction
from tests.support.totp import fresh_code


def _hidden(body: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))


def test_the_refund_completes_after_the_code(login_as, make_sub, session):
    sub = make_sub("enterprise_pro", card="4242424242424242")
    collection.collect(session, invoices.period_invoice(session, sub), trigger="signup")
    payment = session.query(PaymentTransaction).filter_by(subscription_id=sub.id).one()
    admin = login_as("admin")
    session.commit()
    url = f"/admin/billing/subscriptions/{sub.id}/refund"
    asked = admin.post(url, data={"payment_id": payment.id, "amount": "20.00", "reason": "charged twice in March"})
    assert "/auth/sudo" in asked.location and payment.refunded_amount == 0
    prompt = admin.get(asked.location).get_data(as_text=True)
    assert 'id="sudo-pending"' in prompt
    confirmed = admin.post("/auth/sudo", data={"code": fresh_code(admin.user.totp_secret),
                                               "next": f"/admin/billing/subscriptions/{sub.id}"})
    body = confirmed.get_data(as_text=True)
    assert confirmed.status_code == 200 and f'action="{url}"' in body and "data-autosubmit" in body
    fields = _hidden(body)
    assert fields["reason"] == "charged twice in March" and fields["amount"] == "20.00"
    done = admin.post(url, data=fields)  # what the page submits (by itself with JavaScript)
    assert done.status_code == 302
    session.refresh(payment)
    assert payment.refunded_amount == Decimal("20.00")
    again = admin.post("/auth/sudo", data={"code": fresh_code(admin.user.totp_secret), "next": "/admin"})
    assert again.status_code == 302  # kept once: nothing is replayed twice


def test_secrets_are_not_kept_for_the_replay(login_as):
    admin = login_as("admin")
    asked = admin.post("/admin/account/password", data={"current_password": "CorrectHorse9Battery",
                                                         "new_password": "An0ther-Long-Passphrase"})
    assert "/auth/sudo" in asked.location
    confirmed = admin.post("/auth/sudo", data={"code": fresh_code(admin.user.totp_secret), "next": "/admin/account"})
    assert confirmed.status_code == 302 and confirmed.location.endswith("/admin/account")
    with admin.session_transaction() as sess:
        assert "auth_sudo_pending" not in sess
