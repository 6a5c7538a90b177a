"""Test accounts (customers, not staff): create, list, set expiry, delete; the production guard.

A test account is `users.account_type = 'test'` with `test_expires_at` (default 7 days, at
most 30 days from now, never in the past). Everything it writes is test data; the cleanup
job removes it after expiry. Passwords are generated when not given and returned once.
"""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps

from email_validator import EmailNotValidError, validate_email
from flask import g, has_request_context
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import IntegrityError

from app.auth.service import hash_password, validate_new_password
from app.core import audit, bounds, clock, testmode
from app.core.errors import DomainError, NotFound
from app.sandbox.expiry import resolve_expiry
from app.sandbox.twins import provision_test_account
from app.users.models import SERVICE_PROVIDER, User

# The subscription tiers of seed 001: a test account asked for with one gets its subscription and credits.
SUBSCRIPTION_TIERS = ("free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual")
MAX_BATCH = 100
TEST_EMAIL_DOMAIN = "example.test"  # reserved by RFC 2606: mail to it can never be delivered
EXPIRY_FILTERS = ("active", "expiring", "expired", "never")


@dataclass
class CreatedTestUser:
    user: User
    password: str  # plain text, to show once and forget


def generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(20))
        if any(c.islower() for c in password) and any(c.isupper() for c in password) and \
                any(c.isdigit() for c in password):
            return password


def generate_email(prefix: str = "test") -> str:
    return f"{prefix}-{secrets.token_hex(5)}@{TEST_EMAIL_DOMAIN}"


def normalise_email(email: str, field: str = "email") -> str:
    try:
        # test_environment allows the reserved .test domain that generated addresses use.
        return validate_email(email.strip(), check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as error:
        raise DomainError("invalid_email", f"That email address is not valid: {error}", field) from None


def _check_tier(tier: str | None) -> str | None:
    if tier in (None, ""):
        return None
    if tier not in SUBSCRIPTION_TIERS:
        raise DomainError("invalid_tier", f"Unknown tier {tier!r}; use one of {', '.join(SUBSCRIPTION_TIERS)}.",
                          "tier")
    return tier


def _new_user(email: str, password_hash: str, tier: str | None, expires: datetime, actor) -> User:
    local = email.split("@", 1)[0]
    return User(email=email, first_name="Test", last_name=local[:80], account_type="test", is_staff=False,
                email_verified=True, password_hash=password_hash, test_tier=tier, test_expires_at=expires,
                created_by_id=getattr(actor, "id", None))


def create_test_user(session, actor, *, email: str | None = None, password: str | None = None,
                     tier: str | None = None, expires_in_days: int | None = None,
                     expires_at: datetime | None = None) -> CreatedTestUser:
    """Create one test account; the plain password comes back once and is never stored."""
    tier = _check_tier(tier)
    expires = resolve_expiry(days=expires_in_days, at=expires_at,
                             field="expires_at" if expires_at is not None else "expires_in_days")
    email = normalise_email(email) if email else generate_email()
    given = bool(password)
    if password:
        validate_new_password(password, "password")
    else:
        password = generate_password()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DomainError("email_taken", "An account with this email exists already.", "email", status=409)
    user = _new_user(email, hash_password(password), tier, expires, actor)
    with testmode.test_mode():
        try:
            with session.begin_nested():
                session.add(user)
                session.flush()
        except IntegrityError:
            raise DomainError("email_taken", "An account with this email exists already.", "email",
                              status=409) from None
        if tier:
            provision_test_account(session, user, tier)
        audit.record(session, "testdata.test_user_created", actor=actor, target=user,
                     after={"email": email, "tier": tier, "expires_at": expires.isoformat(),
                            "password": "given" if given else "generated"})
    return CreatedTestUser(user, password)


def create_test_users_batch(session, actor, *, count: int, tier: str | None = None,
                            expires_in_days: int | None = None, prefix: str = "qa") -> tuple[list[User], str]:
    """Create `count` test accounts sharing one generated password (hashed once, shown once)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        raise DomainError("invalid_count", f"Create from 1 to {MAX_BATCH} test users at a time.", "count")
    prefix = (prefix or "qa").strip().lower()
    if not prefix.replace("-", "").isalnum() or len(prefix) > 30:
        raise DomainError("invalid_prefix", "Use letters, digits and dashes (30 at most).", "prefix")
    tier = _check_tier(tier)
    expires = resolve_expiry(days=expires_in_days)
    password = generate_password()
    digest = hash_password(password)
    users = [_new_user(generate_email(f"{prefix}-{n + 1}"), digest, tier, expires, actor) for n in range(count)]
    with testmode.test_mode():
        session.add_all(users)
        session.flush()
        if tier:
            for user in users:
                provision_test_account(session, user, tier)
        audit.record(session, "testdata.test_users_batch_created", actor=actor, target_type="users",
                     target_label=f"{count} test users", is_test=True,
                     after={"count": count, "tier": tier, "expires_at": expires.isoformat(),
                            "emails": [u.email for u in users]})
    return users, password


def test_users_stmt(*, creator_id: int | None = None, tier: str | None = None, expiry: str | None = None,
                    q: str | None = None) -> Select:
    """Customer test accounts (never staff personas), filtered; callers paginate."""
    stmt = select(User).where(User.account_type == "test", User.is_staff.is_(False), User.deleted_at.is_(None),
                              User.auth_provider != SERVICE_PROVIDER)
    if creator_id:
        stmt = stmt.where(User.created_by_id == creator_id)
    if tier:
        stmt = stmt.where(User.test_tier == tier)
    now = clock.now()
    if expiry == "expired":
        stmt = stmt.where(User.test_expires_at <= now)
    elif expiry == "expiring":
        stmt = stmt.where(and_(User.test_expires_at > now, User.test_expires_at <= now + timedelta(days=1)))
    elif expiry == "active":
        stmt = stmt.where(or_(User.test_expires_at.is_(None), User.test_expires_at > now))
    elif expiry == "never":
        stmt = stmt.where(User.test_expires_at.is_(None))
    if q:
        stmt = stmt.where(User.email.contains(q.strip().lower(), autoescape=True))
    return stmt


def creators(session) -> list[User]:
    """Staff who created test accounts (for the creator filter)."""
    ids = select(User.created_by_id).where(User.account_type == "test", User.created_by_id.is_not(None)).distinct()
    return list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.email)))


def get_test_user(session, user_id: int) -> User:
    """A customer test account, or a clear refusal (production and staff accounts are out of reach)."""
    user = session.get(User, user_id) if bounds.int_ok(user_id) else None
    if user is None or user.deleted_at is not None:
        raise NotFound("user")
    if user.account_type != "test":
        raise DomainError("not_a_test_account",
                          "This is a production account: the test-data tools never change it.", None, status=409)
    if user.is_staff:
        raise DomainError("staff_account", "Staff test personas are managed from the users screens.", None,
                          status=409)
    if user.auth_provider == SERVICE_PROVIDER:
        raise DomainError("service_account", "This is an OAuth client's service account: revoke the client instead.",
                          None, status=409)
    return user


def set_test_user_expiry(session, actor, user: User, *, days: int | None = None, at: datetime | None = None) -> User:
    user = get_test_user(session, user.id)
    before = user.test_expires_at.isoformat() if user.test_expires_at else None
    user.test_expires_at = resolve_expiry(days=days, at=at, field="expires_at" if at is not None else "expires_in_days")
    with testmode.test_mode():
        audit.record(session, "testdata.test_user_expiry_changed", actor=actor, target=user,
                     before={"expires_at": before}, after={"expires_at": user.test_expires_at.isoformat()})
    return user


def extend_test_users(session, actor, user_ids: list[int], days: int) -> int:
    """Set the expiry of several test accounts to `days` from now, all or nothing (one audit row each)."""
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        raise DomainError("nothing_selected", "Select at least one test account.", "ids")
    users = [get_test_user(session, user_id) for user_id in ids]  # a production id: 404, nothing changed
    for user in users:
        set_test_user_expiry(session, actor, user, days=days)
    return len(users)


# Tables whose rows belong to a user, deleted first so SQLite (no enforced FKs) matches
# PostgreSQL's ON DELETE CASCADE. The cleanup job's dependency-ordered delete supersedes this.
def delete_test_users(session, actor, user_ids: list[int], reason: str | None = None) -> int:
    """Delete customer test accounts, all or nothing; production rows are refused in the SQL itself."""
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        raise DomainError("nothing_selected", "Select at least one test account.", "ids")
    users = [get_test_user(session, user_id) for user_id in ids]
    snapshot = [{"id": u.id, "email": u.email, "tier": u.test_tier,
                 "expires_at": u.test_expires_at.isoformat() if u.test_expires_at else None} for u in users]
    from app.sandbox import cleanup

    for user in users:
        session.expunge(user)
    # The cleanup's dependency-ordered delete: every statement carries the is_test guard.
    with testmode.test_data_tool():
        counts = cleanup.delete_user_batch(
            session, cleanup.graph(), ids,
            lambda u: and_(u.c.is_staff.is_(False), u.c.auth_provider != SERVICE_PROVIDER))
    if counts.get("users", 0) != len(ids):
        raise DomainError("delete_refused", "Some accounts could not be deleted; nothing was changed.", "ids",
                          status=409)
    with testmode.test_mode():
        for row in snapshot:
            audit.record(session, "testdata.test_user_deleted", actor=actor, target_type="users",
                         target_id=row["id"], target_label=row["email"], before=row, reason=reason, is_test=True)
    return len(ids)


def email_suppressed(user: User) -> bool:
    """Seam for the notifications outbox: mail to a test account is recorded as suppressed, never sent."""
    return bool(user.is_test)


def ensure_production_user(user: User | None, action: str = "This action") -> None:
    """Service-level guard: critical live actions (real payments, live refunds) refuse test accounts."""
    if user is None or user.is_test or user.account_type == "test":
        raise DomainError("test_account_not_allowed",
                          f"{action} is not available to test accounts; use the test payment flow.",
                          None, status=403)


def require_production_user(func=None, *, user_arg: str = "user", action: str | None = None):
    """Decorator: refuse when the acting account (kwargs[user_arg], else the API caller) is a test account.

    Also refuses any call made in test mode (a sandbox/development key), so a test request can
    never reach a live action through a production account's test key.
    """

    def decorator(inner):
        @wraps(inner)
        def wrapped(*args, **kwargs):
            user = kwargs.get(user_arg)
            if user is None and has_request_context():
                user = g.get("api_user")
            label = action or inner.__name__.replace("_", " ").capitalize()
            ensure_production_user(user, label)
            if testmode.active():
                raise DomainError("test_mode_not_allowed", f"{label} is not available in test mode.", None,
                                  status=403)
            return inner(*args, **kwargs)

        return wrapped

    return decorator(func) if func is not None else decorator
