"""The outbox: suppression for test accounts, SMTP delivery, retries, and the screen."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from app.core import testmode
from app.notifications import service
from app.notifications.models import OutboxMessage


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(app):
    inbox = _Inbox()
    port = _closed_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    yield inbox
    controller.stop()
    app.config.update(SMTP_HOST="", SMTP_PORT=587)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_unreachable_smtp_is_retried_then_failed(app, session, make_user, frozen_clock):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=_closed_port(), SMTP_STARTTLS=False)
    try:
        message = service.queue_email(session, kind="notice", subject="S", body="B", user=make_user())
        assert service.deliver_due(session)["retry"] == 1
        assert message.status == "queued" and "ConnectionRefused" in message.last_error
        assert service.deliver_due(session)["retry"] == 0  # backing off
        for _ in range(4):
            frozen_clock.advance(timedelta(hours=1))
            service.deliver_due(session)
        assert message.status == "failed" and message.attempts == service.MAX_ATTEMPTS
    finally:
        app.config.update(SMTP_HOST="", SMTP_PORT=587)


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
