"""Customer identity: sign-up, sign-in, email verification, password reset, sign-out everywhere.

Customers share the users table with staff but not its doors: a staff account cannot sign in
here (and a customer cannot sign in to the console, auth/service.py). Passwords are argon2id
(the staff hasher). Verification and reset links are signed, expiring tokens; a reset token
names the password it replaces, so it works once.
"""
from __future__ import annotations

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from app.accounts.tokens import revoke_user_tokens
from app.auth.service import GENERIC_FAILURE, check_password, hash_password, validate_new_password
from app.billing import tiers
from app.billing.subscriptions import provision, provision_free
from app.core import audit, clock, testmode
from app.core.errors import DomainError
from app.notifications.service import queue_email
from app.sandbox.expiry import resolve_expiry
from app.users.models import User

VERIFY_MAX_AGE = 7 * 24 * 3600
RESET_MAX_AGE = 3600


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"accounts-{purpose}")


def normalise_email(raw: str | None, field: str = "email", test: bool = False) -> str:
    """A valid address, lower-cased; test accounts may use the reserved .test domain."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email((raw or "").strip(), check_deliverability=False,
                              test_environment=test).normalized.lower()
    except EmailNotValidError:
        raise DomainError("invalid_email", "Enter a valid email address.", field) from None


def email_taken(session, email: str) -> bool:
    return session.scalar(select(User.id).where(User.email == email)) is not None


def create_customer(session, *, email: str, name: str = "", password: str | None = None, actor=None,
                    test: bool = False, verified: bool = False, external_id: str | None = None,
                    metadata: dict | None = None, tier: str = tiers.FREE) -> User:
    """A customer account with its tier's subscription and credits at once (seed 004: free).

    Used by the sign-up page, the provisioning API and the staff screens. A test account when
    `test` or in test mode (the actor's world); a test account expires like any other (7 days
    unless extended). A paid tier is only given to test accounts here: a production customer
    reaches one by paying (billing)."""
    test = testmode.is_test_row(test)
    email = normalise_email(email, test=test)
    external_id = (external_id or "").strip() or None
    if tier != tiers.FREE and not test:
        raise DomainError("tier_requires_payment", f"The {tier} tier starts with a payment: create the customer on "
                          "the free tier, then subscribe them with a card.", "tier", status=422)
    if email_taken(session, email):
        raise DomainError("email_taken", "An account with this email exists already.", "email", status=409)
    if external_id and session.scalar(select(User.id).where(User.external_id == external_id)) is not None:
        raise DomainError("external_id_taken", "A customer with this external_id exists already.", "external_id",
                          status=409)
    first, last = split_name(name)
    user = User(email=email, first_name=first, last_name=last, is_staff=False,
                account_type="test" if test else "standard", email_verified=verified,
                password_hash=hash_password(password) if password else None,
                created_by_id=getattr(actor, "id", None), external_id=external_id, customer_metadata=metadata)
    if test:
        user.test_expires_at, user.test_tier = resolve_expiry(), tier
    session.add(user)
    session.flush()
    provision_free(session, user) if tier == tiers.FREE else provision(session, user, tier)
    audit.record(session, "accounts.customer_created", actor=actor or user, target=user,
                 after={"email": email, "external_id": external_id, "tier": tier, "test": user.is_test})
    return user


def split_name(name: str | None, field: str = "name") -> tuple[str, str]:
    first, _, last = (name or "").strip().partition(" ")
    if len(first) > 80 or len(last.strip()) > 80:
        raise DomainError("invalid_name", "The name is too long (80 characters for each part).", field)
    return first, last.strip()


def sign_up(session, *, email: str, name: str, password: str) -> User:
    validate_new_password(password or "", "password")
    user = create_customer(session, email=email, name=name, password=password)
    send_verification(session, user)
    return user


def send_verification(session, user: User) -> None:
    token = _serializer("verify").dumps({"u": user.id, "e": user.email})
    link = url_for("accounts.verify_email", token=token, _external=True)
    queue_email(session, kind="account_verify", user=user, subject="Confirm your email address",
                body=f"Hello,\n\nConfirm the email address of your Rephlo account:\n{link}\n\n"
                     "The link works for 7 days. If you did not sign up, ignore this message.\n")


def verify_email(session, token: str) -> User:
    try:
        data = _serializer("verify").loads(token, max_age=VERIFY_MAX_AGE)
    except (BadSignature, SignatureExpired):
        raise DomainError("invalid_token", "This confirmation link is invalid or has expired.", None) from None
    user = session.get(User, data.get("u"))
    if user is None or user.email != data.get("e"):
        raise DomainError("invalid_token", "This confirmation link is invalid or has expired.", None)
    if not user.email_verified:
        user.email_verified = True
        audit.record(session, "accounts.email_verified", actor=user, target=user)
    return user


def authenticate(session, email: str, password: str) -> User:
    """Same message for a wrong email, a wrong password and a staff account (not a door for staff)."""
    email = (email or "").strip().lower()
    user = session.scalar(select(User).where(User.email == email))
    ok = check_password(user, password or "")
    expired = user is not None and user.test_expires_at is not None and user.test_expires_at <= clock.now()
    if not ok or user is None or not user.is_active or user.is_staff or user.twin_of_id is not None or expired:
        audit.record(session, "accounts.login_failed", actor=email or "unknown", target=user,
                     after={"email": email}, is_test=False)
        session.commit()
        raise DomainError("invalid_credentials", GENERIC_FAILURE, "password", status=401)
    user.last_login_at = clock.now()
    audit.record(session, "accounts.login_succeeded", actor=user, target=user, is_test=False)
    return user


def request_reset(session, email: str, purpose: str = "reset") -> None:
    """Mail a reset link when the customer exists; say nothing either way (no account probing).

    purpose="welcome": the link a customer made by staff gets to choose a first password (7 days)."""
    email = (email or "").strip().lower()
    user = session.scalar(select(User).where(User.email == email))
    if user is None or user.is_staff or not user.is_active:
        return
    welcome = purpose == "welcome"
    token = _serializer("reset").dumps({"u": user.id, "p": (user.password_hash or "")[-16:], "w": welcome})
    link = url_for("accounts.reset_password", token=token, _external=True)
    if welcome:
        subject, text = "Your Rephlo account is ready", ("Your Rephlo account is ready. Choose your password:\n"
                                                       f"{link}\n\nThe link works for 7 days, once.\n")
    else:
        subject, text = "Reset your password", (f"Choose a new password for your Rephlo account:\n{link}\n\n"
                                                "The link works for one hour, once. If you did not ask for it, "
                                                "ignore this message.\n")
    queue_email(session, kind=f"account_{purpose}", user=user, subject=subject, body=f"Hello,\n\n{text}")


def user_for_reset(session, token: str) -> User:
    invalid = DomainError("invalid_token", "This link is invalid, used or expired.", None)
    try:
        data, issued = _serializer("reset").loads(token, max_age=VERIFY_MAX_AGE, return_timestamp=True)
    except (BadSignature, SignatureExpired):
        raise invalid from None
    if not data.get("w") and (clock.now() - issued).total_seconds() > RESET_MAX_AGE:
        raise invalid
    user = session.get(User, data.get("u"))
    if user is None or user.is_staff or (user.password_hash or "")[-16:] != data.get("p"):
        raise invalid
    return user


def reset_password(session, token: str, password: str) -> User:
    user = user_for_reset(session, token)
    validate_new_password(password or "", "password")
    user.password_hash = hash_password(password)
    user.password_changed_at = clock.now()
    user.email_verified = True  # the link reached the mailbox
    user.session_version += 1  # every other browser session ends, and every app's token
    revoke_user_tokens(session, user.id)
    audit.record(session, "accounts.password_reset", actor=user, target=user)
    return user


def sign_out_everywhere(session, user: User) -> None:
    """End every browser session of the customer and every token their apps hold."""
    user.session_version += 1
    revoked = revoke_user_tokens(session, user.id)
    audit.record(session, "accounts.signed_out_everywhere", actor=user, target=user, after={"tokens": revoked})
