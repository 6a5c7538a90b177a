"""Queue emails in the outbox and deliver them over SMTP with retries.

Test accounts never receive real email: their messages are stored as `suppressed`.
Without SMTP settings (the embedded default) messages stay queued and readable on the
outbox screen.
"""
from __future__ import annotations

import smtplib
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import func, or_, select

from app.core import clock, testmode
from app.core.errors import DomainError
from app.notifications.models import OutboxMessage

MAX_ATTEMPTS = 5


def queue_email(session, *, kind: str, subject: str, body: str, user=None, to_email: str | None = None) -> OutboxMessage:
    to_email = (to_email or getattr(user, "email", None) or "").strip()
    if not to_email:
        raise DomainError("missing_recipient", "The email has no recipient.", "to_email")
    suppressed = bool(getattr(user, "is_test", False)) or testmode.active() or to_email.endswith(".test")
    message = OutboxMessage(user_id=getattr(user, "id", None), to_email=to_email, kind=kind,
                            subject=subject[:255], body=body,
                            status="suppressed" if suppressed else "queued",
                            next_attempt_at=None if suppressed else clock.now())
    if suppressed:
        message.is_test = True
    session.add(message)
    return message


def smtp_configured() -> bool:
    return bool(current_app.config.get("SMTP_HOST"))


def _send(message: OutboxMessage) -> None:
    cfg = current_app.config
    email = EmailMessage()
    email["From"] = cfg["MAIL_FROM"]
    email["To"] = message.to_email
    email["Subject"] = message.subject
    email.set_content(message.body)
    with smtplib.SMTP(cfg["SMTP_HOST"], int(cfg["SMTP_PORT"]), timeout=10) as smtp:
        if cfg.get("SMTP_STARTTLS"):
            smtp.starttls()
        if cfg.get("SMTP_USERNAME"):
            smtp.login(cfg["SMTP_USERNAME"], cfg["SMTP_PASSWORD"])
        smtp.send_message(email)


def deliver_due(session, limit: int = 100) -> dict[str, int]:
    """Send queued messages that are due; a failure is retried with backoff, then marked failed."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not smtp_configured():
        return counts
    now = clock.now()
    due = session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == "queued",
                                    or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
        .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    for message in due:
        message.attempts += 1
        try:
            _send(message)
        except (OSError, smtplib.SMTPException) as exc:
            message.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            if message.attempts >= MAX_ATTEMPTS:
                message.status = "failed"
                counts["failed"] += 1
            else:
                message.next_attempt_at = now + timedelta(minutes=2 ** message.attempts)
                counts["retry"] += 1
        else:
            message.status, message.sent_at, message.last_error = "sent", clock.now(), None
            counts["sent"] += 1
        session.commit()
    return counts


def retrying_count(session, include_test: bool) -> int:
    """Messages whose last delivery attempt failed and that are waiting for another try."""
    stmt = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "queued",
                                                                 OutboxMessage.last_error.is_not(None))
    if not include_test:
        stmt = stmt.where(OutboxMessage.is_test.is_(False))
    return session.scalar(stmt) or 0


def retry_now(session, message: OutboxMessage) -> None:
    if message.status not in ("failed", "queued"):
        raise DomainError("not_retryable", "Only queued or failed messages can be retried.", "status")
    message.status, message.next_attempt_at = "queued", clock.now()
