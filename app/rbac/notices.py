"""The email a user gets when staff assign or change their role with "Notify the user".

The notice goes through the notifications outbox (delivered by its job); a test account's
notice is stored as suppressed and never sent.
"""
from __future__ import annotations

from datetime import datetime

from app.notifications.service import queue_email
from app.rbac.models import Role


def _expiry_sentence(expires_at: datetime | None) -> str:
    if expires_at is None:
        return "It does not expire."
    return f"It expires on {expires_at:%Y-%m-%d at %H:%M} UTC."


def queue_role_notice(session, actor, target, role: Role, *, expires_at: datetime | None, reason: str,
                      replaced: Role | None = None) -> None:
    kind = "role_changed" if replaced is not None else "role_assigned"
    change = f", in place of {replaced.display_name}" if replaced is not None else ""
    by = getattr(actor, "email", None) or "an administrator"
    body = (f"Hello {target.first_name or target.email},\n\n"
            f"{by} gave you the {role.display_name} role in Rephlo Admin{change}. "
            f"{_expiry_sentence(expires_at)}\n\n"
            f"Reason: {reason}\n\n"
            f"The role carries {len(role.permissions)} permissions; sign in to Rephlo Admin to see what you can do. "
            "If you did not expect this change, tell your administrator.")
    queue_email(session, kind=kind, user=target, subject=f"You now have the {role.display_name} role in Rephlo Admin",
                body=body)
