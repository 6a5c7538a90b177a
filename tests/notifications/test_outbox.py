"""The outbox: suppression for test accounts, SMTP delivery, retries, and the screen."""
from __future__ import annotations

from datetime import timedelta

from app.core import testmode
from app.notifications import service
from app.notifications.models import OutboxMessage


def test_test_accounts_are_suppressed(session, make_user):
    real, test = make_user(), make_user(test=True)
    assert service.queue_email(session, kind="notice", subject="Hi", body="x", user=real).status == "queued"
    suppressed = service.queue_email(session, kind="notice", subject="Hi", body="x", user=test)
    assert suppressed.status == "suppressed" and suppressed.is_test
    with testmode.test_mode():
        assert service.queue_email(session, kind="notice", subject="Hi", body="x", user=real).status == "suppressed"


def test_delivery_over_smtp(session, make_user, smtp_server):
    user, test = make_user(), make_user(test=True)
    service.queue_email(session, kind="notice", subject="Welcome", body="Hello", user=user)
    service.queue_email(session, kind="notice", subject="Welcome", body="Hello", user=test)
    assert service.deliver_due(session) == {"sent": 1, "retry": 0, "failed": 0}
    assert [m.rcpt_tos for m in smtp_server.messages] == [[user.email]]
    assert service.deliver_due(session)["sent"] == 0  # nothing sent twice


def test_unreachable_smtp_is_retried_then_failed(session, make_user, frozen_clock, unreachable_smtp):
    message = service.queue_email(session, kind="notice", subject="S", body="B", user=make_user())
    assert service.deliver_due(session)["retry"] == 1
    assert message.status == "queued" and "ConnectionRefused" in message.last_error
    assert service.deliver_due(session)["retry"] == 0  # backing off
    for _ in range(4):
        frozen_clock.advance(timedelta(hours=1))
        service.deliver_due(session)
    assert message.status == "failed" and message.attempts == service.MAX_ATTEMPTS


def test_without_smtp_messages_stay_queued(session, make_user):
    message = service.queue_email(session, kind="notice", subject="S", body="B", user=make_user())
    assert service.deliver_due(session) == {"sent": 0, "retry": 0, "failed": 0}
    assert message.status == "queued"


def test_outbox_screen_lists_and_retries(login_as, session, make_user):
    client = login_as("admin")
    message = service.queue_email(session, kind="dunning", subject="Payment failed", body="B", user=make_user())
    message.status = "failed"
    session.flush()
    page = client.get("/admin/outbox?status=failed")
    assert b"Payment failed" in page.data and b"No SMTP server is configured" in page.data
    assert client.post(f"/admin/outbox/{message.id}/retry").status_code == 302
    assert session.get(OutboxMessage, message.id).status == "queued"


def test_auditor_cannot_open_outbox(login_as):
    assert login_as("auditor").get("/admin/outbox").status_code == 403


def test_unreachable_smtp_is_said_plainly_on_the_screens(login_as, session, make_user, unreachable_smtp):
    client = login_as("admin")
    message = service.queue_email(session, kind="notice", subject="Your invoice", body="B", user=make_user())
    assert service.deliver_due(session)["retry"] == 1
    session.commit()
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "1 message\n  could not be sent yet: the mail server did not take it" in page
    assert "The outbox keeps them and tries again" in page
    assert "Not sent: ConnectionRefusedError" in page and "Next try" in page
    detail = client.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert "Attempt 1 failed: ConnectionRefusedError" in detail and "The outbox will try again" in detail
    message.status = "failed"
    session.commit()
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "could not be sent yet" not in page and "Gave up after 1 attempts: ConnectionRefusedError" in page


def test_outbox_hides_test_messages_unless_asked(login_as, session, make_user):
    client = login_as("admin")
    service.queue_email(session, kind="notice", subject="For a tester", body="B", user=make_user(test=True))
    session.commit()
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "For a tester" not in page and "Production messages only." in page and 'id="outbox-include-test"' in page
    page = client.get("/admin/outbox?include_test=1").get_data(as_text=True)
    assert "For a tester" in page and "suppressed" in page and 'id="outbox-production-only"' in page
