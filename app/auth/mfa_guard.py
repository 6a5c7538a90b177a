"""The second sign-in factor under attack: throttles, lockout, the password-only window.

A known password must not buy unlimited code guesses. /auth/verify and /auth/sudo count wrong
codes per account and per IP in the limiter the password step uses (429 past either), and
MFA_LOCKOUT_FAILURES wrong codes in a row lock the account's second factor until an admin
unlocks it on the user's page. A password-only session waits MFA_PENDING_TIMEOUT at most.
Audit: one row per burst (its first wrong code) and one for the lock, never one per guess.
"""
from __future__ import annotations

from flask import current_app, request, session
from flask_login import current_user
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from app.core import audit, clock
from app.core.audit import require_reason
from app.core.errors import DomainError
from app.extensions import limiter
from app.users.models import User

LOCKED_MESSAGE = "Two-factor sign-in is locked after too many wrong codes. Ask an administrator to unlock it."


def _account_key() -> str:
    return f"mfa:{current_user.id}" if current_user.is_authenticated else f"mfa-ip:{request.remote_addr}"


def _failed(response) -> bool:
    return response.status_code >= 400


def throttled(view):
    """Per-IP and per-account limits on wrong codes (only failures count), as on the password step."""
    view = limiter.limit(lambda: current_app.config["MFA_LIMIT_PER_ACCOUNT"], key_func=_account_key,
                         methods=["POST"], deduct_when=_failed, scope="mfa-account")(view)
    return limiter.limit(lambda: current_app.config["MFA_LIMIT_PER_IP"], methods=["POST"], deduct_when=_failed,
                         scope="mfa-ip")(view)


def pending_expired(started_key: str) -> bool:
    """A password-only session older than MFA_PENDING_TIMEOUT is over."""
    started = session.get(started_key)
    window = current_app.config["MFA_PENDING_TIMEOUT"].total_seconds()
    return started is None or clock.now().timestamp() - started > window


def is_locked(user: User) -> bool:
    return user.mfa_locked_at is not None


def record_failure(db_session, user: User, stage: str) -> None:
    """Count a wrong code (one SQL increment); audit the burst's first one and the lock, once."""
    user.mfa_failures = User.mfa_failures + 1
    db_session.flush()
    failures = user.mfa_failures  # reloaded: the count after this request's increment
    if failures == 1:
        audit.record(db_session, "auth.login_failed", actor=user, target=user, is_test=False,
                     after={"stage": stage, "burst": "started"})
    if failures >= current_app.config["MFA_LOCKOUT_FAILURES"]:
        now = clock.now()
        locked = db_session.execute(update(User).where(User.id == user.id, User.mfa_locked_at.is_(None))
                                    .values(mfa_locked_at=now).execution_options(synchronize_session=False))
        if locked.rowcount == 1:
            set_committed_value(user, "mfa_locked_at", now)
            audit.record(db_session, "auth.mfa_locked", actor=user, target=user, is_test=False,
                         after={"stage": stage, "failures": failures})


def record_success(db_session, user: User) -> int:
    """A right code ends the burst; returns how many wrong codes it had."""
    failures = user.mfa_failures or 0
    if failures:
        user.mfa_failures = 0
    return failures


def unlock(db_session, actor, target: User, reason: str | None) -> None:
    """An admin lifts the lock (audited, with the failures it had)."""
    reason = require_reason(reason, minimum=3)
    if actor.id == target.id:
        raise DomainError("self_unlock", "Another administrator must unlock your account.", None, status=403)
    if not is_locked(target):
        raise DomainError("not_locked", "Two-factor sign-in of this account is not locked.", None, status=409)
    before = {"mfa_locked_at": target.mfa_locked_at.isoformat(), "mfa_failures": target.mfa_failures}
    target.mfa_locked_at, target.mfa_failures = None, 0
    audit.record(db_session, "auth.mfa_unlocked", actor=actor, target=target, before=before,
                 after={"mfa_locked_at": None, "mfa_failures": 0}, reason=reason)
