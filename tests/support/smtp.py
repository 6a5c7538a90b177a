"""A real SMTP server (aiosmtpd on a loopback port) that keeps what it receives, for outbox tests."""
from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def closed_port() -> int:
    """A loopback port nothing listens on (SMTP unreachable)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(app):
    """The app's SMTP settings pointed at a live local server; yields its inbox."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=closed_port())
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, SMTP_STARTTLS=False)
    yield inbox
    controller.stop()
    app.config.update(SMTP_HOST="", SMTP_PORT=587)


@pytest.fixture
def unreachable_smtp(app):
    """The app's SMTP settings pointed at a port where nothing listens."""
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port(), SMTP_STARTTLS=False)
    yield
    app.config.update(SMTP_HOST="", SMTP_PORT=587)
