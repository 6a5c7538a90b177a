"""What staff do to a customer account from its page: edit the profile, suspend, unsuspend, ban
or unban, erase it (GDPR), view it as the customer sees it. Each checks its own permission here
(so no screen or script can skip it), refuses bad input before writing, and is audited."""
from __future__ import annotations

from sqlalchemy import update

from app.api.models import ApiKey, OAuthClient
from app.billing.subscriptions import live_subscription
from app.core import audit, clock
from app.core.audit import require_reason
from app.core.errors import DomainError, PermissionDenied
from app.credits.balances import get_balance
from app.rbac.service import has_permission
from app.users.models import User

# action -> (permission, statuses it applies to, status after, audit action)
TRANSITIONS = {
    "suspend": ("users.suspend", ("active",), "suspended", "users.suspended"),
    "unsuspend": ("users.unsuspend", ("suspended",), "active", "users.unsuspended"),
    "ban": ("users.ban", ("active", "suspended"), "banned", "users.banned"),
    "unban": ("users.ban", ("banned",), "active", "users.unbanned"),
}
NAME_MAX = 80


def require(session, actor, permission: str) -> None:
    if not has_permission(session, actor, permission):
        raise PermissionDenied(f"You need the {permission} permission.", permission=permission)


def _reason(reason: str | None) -> str:
    return require_reason(reason, minimum=3)


def _name(value: str | None, field: str) -> str:
    value = (value or "").strip()
    if len(value) > NAME_MAX:
        raise DomainError("too_long", f"At most {NAME_MAX} characters.", field)
    return value


def edit_profile(session, actor, user: User, *, first_name, last_name, reason) -> User:
    require(session, actor, "users.edit_profile")
    first, last, why = _name(first_name, "first_name"), _name(last_name, "last_name"), _reason(reason)
    if not first and not last:
        raise DomainError("name_required", "Give a first or a last name.", "first_name")
    before = {"first_name": user.first_name, "last_name": user.last_name}
    user.first_name, user.last_name = first, last
    audit.record(session, "users.profile_edited", actor=actor, target=user, before=before,
                 after={"first_name": first, "last_name": last}, reason=why)
    return user


def change_status(session, actor, user: User, action: str, reason) -> User:
    if action not in TRANSITIONS:
        raise DomainError("invalid_action", "Choose suspend, unsuspend, ban or unban.", "action")
    permission, allowed, after, audit_action = TRANSITIONS[action]
    require(session, actor, permission)
    why = _reason(reason)
    if user.status not in allowed:
        raise DomainError("invalid_status", f"A {user.status} account cannot be {audit_action.split('.')[1]}.",
                          "action", status=409)
    before = user.status
    user.status = after
    if after != "active":
        user.session_version = (user.session_version or 1) + 1  # ends the customer's sessions
    audit.record(session, audit_action, actor=actor, target=user, before={"status": before},
                 after={"status": after}, reason=why)
    return user


def erase(session, actor, user: User, *, confirm_email, reason) -> User:
    """GDPR erasure: personal data is replaced, keys and OAuth clients revoked, the account
    closed; invoices, payments, ledgers and licenses stay (financial records must be kept),
    now pointing at an anonymous account."""
    require(session, actor, "users.delete")
    why = _reason(reason)
    if (confirm_email or "").strip().lower() != user.email:
        raise DomainError("confirmation_mismatch", "Type the customer's email exactly to confirm.", "confirm_email")
    if user.is_staff:
        raise DomainError("staff_account", "Staff accounts are closed from the Users screen.", "confirm_email")
    now = clock.now()
    label = f"erased customer #{user.id}"
    session.execute(update(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_reason="account erased (GDPR)", revoked_by_id=actor.id))
    session.execute(update(OAuthClient).where(OAuthClient.user_id == user.id, OAuthClient.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_reason="account erased (GDPR)"))
    user.email = f"erased-{user.id}@erased.invalid"
    user.username = user.google_id = user.password_hash = user.totp_secret = None
    user.first_name, user.last_name, user.totp_enabled = "", "", False
    user.status, user.deleted_at = "banned", now
    user.session_version = (user.session_version or 1) + 1
    audit.record(session, "users.erased", actor=actor, target=user, target_label=label,
                 after={"personal_data": "erased", "financial_records": "kept"}, reason=why)
    return user


def view_as(session, actor, user: User) -> dict:
    """What the customer sees of their account (read-only; the audit records who looked)."""
    from app.customers import service

    require(session, actor, "users.impersonate")
    audit.record(session, "users.viewed_as", actor=actor, target=user, reason="read-only view as the customer")
    return {"subscription": live_subscription(session, user.id), "balance": get_balance(session, user.id),
            "invoices": service.invoices_of(session, user.id, limit=12),
            "licenses": service.licenses_of(session, user.id)}
