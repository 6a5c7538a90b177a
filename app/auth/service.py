"""Sign-in rules: argon2id passwords, TOTP with replay protection, recovery codes."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

import pyotp
from argon2 import PasswordHasher
from flask import current_app, has_app_context
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.models import RecoveryCode
from app.core import audit, clock
from app.core.errors import DomainError
from app.users.models import User

# argon2id at argon2-cffi's defaults (RFC 9106's low-memory profile). A hash records its parameters,
# so verifying it costs what making it cost. PASSWORD_HASH_COST="test", honoured only by a TESTING
# app, makes the suite's hashes cheap (each default one is 0.1-0.5 s on a busy 2-core machine).
_STANDARD = PasswordHasher()
_TEST_ONLY = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASHES = {_STANDARD: _STANDARD.hash(secrets.token_urlsafe(16)),
                 _TEST_ONLY: _TEST_ONLY.hash(secrets.token_urlsafe(16))}
TOTP_STEP = 30
TOTP_WINDOW = 1
RECOVERY_CODE_COUNT = 10
GENERIC_FAILURE = "Wrong email or password."
MIN_PASSWORD = 12


def _hasher() -> PasswordHasher:
    if has_app_context() and current_app.testing and current_app.config.get("PASSWORD_HASH_COST") == "test":
        return _TEST_ONLY
    return _STANDARD


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(user: User | None, password: str) -> bool:
    hasher = _hasher()
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASHES[hasher]
    try:
        ok = hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and user is not None and user.password_hash is not None


def validate_new_password(password: str, field: str = "new_password") -> None:
    if len(password or "") < MIN_PASSWORD:
        raise DomainError("weak_password", f"Use at least {MIN_PASSWORD} characters.", field)
    if password.lower() == password or password.upper() == password or not any(c.isdigit() for c in password):
        raise DomainError("weak_password", "Mix upper and lower case letters and at least one digit.", field)


def authenticate(session, email: str, password: str) -> User:
    """Password step. Same message for a wrong email and a wrong password; audited either way."""
    email = (email or "").strip().lower()
    user = session.scalar(select(User).where(User.email == email))
    ok = check_password(user, password or "")
    if not ok or user is None or not user.is_active:
        audit.record(session, "auth.login_failed", actor=email or "unknown", target=user,
                     after={"email": email, "stage": "password"}, is_test=False)
        session.commit()
        raise DomainError("invalid_credentials", GENERIC_FAILURE, "password", status=401)
    if not user.is_staff:
        # Customers have their own door (accounts/); the console never walks them into staff MFA.
        audit.record(session, "auth.login_failed", actor=user, target=user,
                     after={"email": email, "stage": "not_staff"}, is_test=False)
        session.commit()
        raise DomainError("not_staff", "This sign-in is for staff. Customers sign in at /account/signin.",
                          "email", status=403)
    return user


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Rephlo Admin")


def _matching_step(secret: str, code: str) -> int | None:
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(clock.now().timestamp()) // TOTP_STEP
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None


def verify_totp(session, user: User, code: str, secret: str | None = None) -> bool:
    """Accept a code once: the time step of every accepted code is stored and never reused.

    The claim is one conditional UPDATE (the step must be newer than the stored one), so of
    requests racing with one code exactly one changes the row and wins."""
    secret = secret or user.totp_secret
    if not secret:
        return False
    step = _matching_step(secret, code)
    if step is None:
        return False
    claimed = session.execute(
        update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False)).rowcount == 1
    if claimed:
        set_committed_value(user, "totp_last_step", step)
    return claimed


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def new_recovery_codes(session, user: User) -> list[str]:
    """Replace the user's recovery codes; the plain codes are returned once, only hashes kept."""
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_code_hash(raw)))
    return codes


def use_recovery_code(session, user: User, code: str) -> bool:
    """Spend a recovery code: a conditional UPDATE, so a code raced by many requests is used once."""
    digest = _code_hash(code or "")
    result = session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == digest,
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=clock.now()).execution_options(synchronize_session=False))
    return result.rowcount == 1


def remaining_recovery_codes(session, user: User) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).all())


def enable_totp(session, user: User, secret: str, code: str) -> list[str]:
    if not verify_totp(session, user, code, secret=secret):
        raise DomainError("invalid_code", "That code is not right. Check your authenticator's clock and try again.",
                          "code")
    user.totp_secret, user.totp_enabled = secret, True
    codes = new_recovery_codes(session, user)
    audit.record(session, "auth.mfa_enrolled", actor=user, target=user)
    return codes


def change_password(session, user: User, current: str, new: str) -> None:
    if not check_password(user, current):
        raise DomainError("wrong_password", "Your current password is not right.", "current_password")
    validate_new_password(new)
    user.password_hash = hash_password(new)
    user.password_changed_at = clock.now()
    end_sessions(session, user)
    revoke_staff_keys(session, user, "Owner changed their password")
    audit.record(session, "auth.password_changed", actor=user, target=user)


def end_sessions(session, user: User) -> None:
    """End every session of the user on the server: cookies carry the session version
    (User.get_id) and the user loader refuses a stale one at the next request.

    One SQL increment, so two sign-outs at once cannot both write the same version."""
    user.session_version = User.session_version + 1
    session.flush()  # the attribute is reloaded on next access


def sign_out(session, user: User, *, everywhere: bool = False) -> None:
    """Sign-out ends the session server-side (a saved cookie no longer opens anything)."""
    end_sessions(session, user)
    if everywhere:
        revoke_staff_keys(session, user, "Owner signed out everywhere")
    audit.record(session, "auth.logout_everywhere" if everywhere else "auth.logout", actor=user, target=user,
                 is_test=False)


# What else ends with a staff member's sessions: their API keys (app/api/keys.py). Plugged in by
# create_app, since app/api builds on auth. Each hook takes (session, user, reason), returns a count.
SessionsEndedHook = Callable[..., int]
_sessions_ended: dict[str, SessionsEndedHook] = {}


def on_sessions_ended(name: str, hook: SessionsEndedHook) -> None:
    """Run `hook` when a staff member's sessions end (one per name: create_app runs once per app)."""
    _sessions_ended[name] = hook


def revoke_staff_keys(session, user: User, reason: str) -> int:
    """A staff member's API keys end with their sessions: a key is a session that never expires."""
    if not user.is_staff:
        return 0
    return sum(hook(session, user, reason) for hook in _sessions_ended.values())
