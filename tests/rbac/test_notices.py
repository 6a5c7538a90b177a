"""Role-assignment notices: "Notify the user" puts an email in the outbox (suppressed for test accounts)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from app.core.jobs import PERIODIC, run_periodic
from app.jobs_registry import load
from app.notifications.models import OutboxMessage
from app.rbac import service
from tests.rbac.conftest import HTMX


def _outbox(session, user) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.user_id == user.id)))


def test_assignment_with_notify_queues_the_notice(session, make_user, role_id):
    admin = make_user(roles=("admin",))
    target = make_user(email="new.ops@example.com", staff=False, totp=False, first_name="Nina")
    expires = datetime(2030, 1, 31, 18, 0, tzinfo=timezone.utc)
    service.assign_role(session, admin, target, role_id("ops"), reason="Cover for the holidays",
                        expires_at=expires, notify_user=True)
    [message] = _outbox(session, target)
    assert (message.to_email, message.kind, message.status) == ("new.ops@example.com", "role_assigned", "queued")
    assert not message.is_test
    assert message.subject == "You now have the Operations role in Rephlo Admin"
    assert message.body.startswith("Hello Nina,")
    assert f"{admin.email} gave you the Operations role in Rephlo Admin." in message.body
    assert "It expires on 2030-01-31 at 18:00 UTC." in message.body
    assert "Reason: Cover for the holidays" in message.body and "25 permissions" in message.body


def test_assignment_without_notify_sends_nothing(session, make_user, role_id):
    admin, target = make_user(roles=("admin",)), make_user(staff=False, totp=False)
    service.assign_role(session, admin, target, role_id("support"), reason="Joins support")
    assert _outbox(session, target) == []


def test_role_change_with_notify_names_both_roles(session, make_user, role_id):
    admin, target = make_user(roles=("admin",)), make_user(roles=("support",))
    old = service.active_assignments(session, target.id)[0]
    service.assign_role(session, admin, target, role_id("ops"), reason="Promotion", notify_user=True,
                        replace_assignment_id=old.id)
    [message] = _outbox(session, target)
    assert message.kind == "role_changed"
    assert "the Operations role in Rephlo Admin, in place of Customer Support." in message.body
    assert "It does not expire." in message.body


def test_notice_is_delivered_by_the_outbox_job(session, make_user, role_id, smtp_server):
    admin, target = make_user(roles=("admin",)), make_user(staff=False, totp=False)
    service.assign_role(session, admin, target, role_id("analyst"), reason="Reporting", notify_user=True)
    session.commit()
    load()
    assert "deliver-outbox" in PERIODIC
    record = run_periodic("deliver-outbox")
    assert record.status == "finished" and record.result == {"sent": 1, "retry": 0, "failed": 0}
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == [target.email]
    assert b"Subject: You now have the Business Analyst role in Rephlo Admin" in envelope.content
    assert _outbox(session, target)[0].status == "sent"


def test_screen_assign_with_notify_puts_the_email_in_the_outbox(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(staff=False, totp=False)
    response = client.post(f"/admin/users/{target.id}/roles", headers=HTMX, data={
        "assign-role_id": role_id("ops"), "assign-reason": "New team member - operations",
        "assign-expires_at": "2030-06-30T09:30", "assign-notify_user": "y"})
    assert response.status_code == 200 and "user notified by email" in response.get_data(as_text=True)
    [message] = _outbox(session, target)
    assert message.to_email == target.email and message.status == "queued"
    assert "Operations" in message.subject and "It expires on 2030-06-30 at 09:30 UTC." in message.body


def test_screen_assign_without_notify_or_with_bad_input_sends_nothing(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(staff=False, totp=False)
    refused = client.post(f"/admin/users/{target.id}/roles", headers=HTMX, data={
        "assign-role_id": role_id("ops"), "assign-reason": "no", "assign-notify_user": "y"})
    assert refused.status_code == 422 and _outbox(session, target) == []
    quiet = client.post(f"/admin/users/{target.id}/roles", headers=HTMX, data={
        "assign-role_id": role_id("ops"), "assign-reason": "New team member - operations"})
    assert quiet.status_code == 200 and _outbox(session, target) == []


def test_screen_change_with_notify_and_test_account_is_suppressed(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(roles=("support",), test=True)
    old = service.active_assignments(session, target.id)[0]
    response = client.post(f"/admin/users/{target.id}/roles/{old.id}/change", headers=HTMX, data={
        f"change{old.id}-role_id": role_id("ops"), f"change{old.id}-reason": "Promotion",
        f"change{old.id}-notify_user": "y"})
    assert response.status_code == 200
    [message] = _outbox(session, target)
    assert message.status == "suppressed" and message.is_test and message.next_attempt_at is None
    assert message.kind == "role_changed"
