"""Demo and test personas of seed 001, loaded idempotently by `flask seed`.

Seeded personas are test data (account_type 'test') without an expiry. Later domains
add their own seed functions to SEEDERS.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pyotp
from sqlalchemy import select

from app.auth.service import hash_password
from app.billing.seed import seed_billing
from app.coupons.seed import seed_coupons
from app.credits.seed import seed_credits
from app.licensing.seed import seed_licensing
from app.rbac import service as rbac
from app.rbac.models import PermissionOverride, Role, RoleAssignment
from app.sandbox.seed import seed_api_access
from app.users.models import User

# A fixed secret so that testers can add the seeded admin to an authenticator once.
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPREPHLOADMIN23456"
SUPER_ADMIN_EMAIL = "super.admin@rephlo.ai"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


PERSONAS = [
    # email, first, last, username, password, staff, provider
    ("free.user@example.com", "Free", "User", "freeuser", "TestPassword123!", False, "local"),
    ("pro.user@example.com", "Pro", "User", "prouser", "TestPassword123!", False, "local"),
    ("admin.test@rephlo.ai", "Admin", "Test", "admintest", "AdminPassword123!", True, "local"),
    ("google.user@example.com", "Google", "User", "googleuser", None, False, "google"),
    ("ops.user@rephlo.ai", "Operations", "Lead", "opsuser", "OpsPassword123!", True, "local"),
    ("support.user@rephlo.ai", "Support", "Agent", "supportuser", "SupportPassword123!", True, "local"),
    ("analyst.user@rephlo.ai", "Business", "Analyst", "analystuser", "AnalystPassword123!", True, "local"),
    ("auditor.user@rephlo.ai", "Compliance", "Auditor", "auditoruser", "AuditorPassword123!", True, "local"),
    (SUPER_ADMIN_EMAIL, "Super", "Admin", "superadmin", "SuperAdminPassword123!", True, "local"),
]

# email, role, assigned_by, assigned_at, expires_at, reason  (assignments 1 to 6 of seed 001)
ASSIGNMENTS = [
    ("admin.test@rephlo.ai", "admin", SUPER_ADMIN_EMAIL, "2025-10-01T00:00:00Z", None, "Admin team member for operations"),
    ("ops.user@rephlo.ai", "ops", "admin.test@rephlo.ai", "2025-10-15T00:00:00Z", None, "Operations team - subscription management"),
    ("support.user@rephlo.ai", "support", "admin.test@rephlo.ai", "2025-11-01T00:00:00Z", None, "Support team - customer assistance"),
    ("analyst.user@rephlo.ai", "analyst", "admin.test@rephlo.ai", "2025-11-05T00:00:00Z", None, "Business intelligence and reporting"),
    ("auditor.user@rephlo.ai", "auditor", "admin.test@rephlo.ai", "2025-11-08T00:00:00Z", None, "Compliance and audit trail monitoring"),
    ("ops.user@rephlo.ai", "analyst", "admin.test@rephlo.ai", "2025-11-09T10:00:00Z", "2025-11-10T10:00:00Z", "Temporary analytics access for Q4 planning"),
    (SUPER_ADMIN_EMAIL, "super_admin", None, "2025-10-01T00:00:00Z", None, "Platform owner"),
]

# email, permission, action, expires_at, reason, granted_by, granted_at  (overrides 1 to 4)
OVERRIDES = [
    ("ops.user@rephlo.ai", "licenses.revoke", "grant", "2025-11-10T23:59:59Z",
     "Emergency license fraud investigation - user account 12345", "admin.test@rephlo.ai", "2025-11-09T14:30:00Z"),
    ("support.user@rephlo.ai", "credits.grant", "revoke", None,
     "Training period - restricted until Nov 30", "admin.test@rephlo.ai", "2025-11-09T09:00:00Z"),
    ("support.user@rephlo.ai", "subscriptions.refund", "grant", "2025-11-30T23:59:59Z",
     "Special project: legacy customer migration support", "admin.test@rephlo.ai", "2025-11-01T08:00:00Z"),
    ("support.user@rephlo.ai", "users.impersonate", "grant", "2025-11-16T23:59:59Z",
     "Temporary authorization to debug customer account issues", SUPER_ADMIN_EMAIL, "2025-11-09T11:00:00Z"),
]


def seed_personas(session, log=print) -> dict[str, User]:
    rbac.ensure_catalogue(session)
    users: dict[str, User] = {}
    for email, first, last, username, password, staff, provider in PERSONAS:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, first_name=first, last_name=last, username=username,
                        account_type="test", is_staff=staff, email_verified=True, auth_provider=provider,
                        password_hash=hash_password(password) if password else None,
                        google_id="118094742123456789012" if provider == "google" else None)
            session.add(user)
            log(f"  created {email}")
        user.account_type, user.test_expires_at = "test", None
        users[email] = user
    admin = users["admin.test@rephlo.ai"]
    if not admin.totp_enabled:
        admin.totp_secret, admin.totp_enabled = ADMIN_TOTP_SECRET, True
    session.flush()
    roles = {r.name: r for r in session.scalars(select(Role))}
    for email, role, by, at, expires, reason in ASSIGNMENTS:
        user = users[email]
        exists = session.scalar(select(RoleAssignment).where(
            RoleAssignment.user_id == user.id, RoleAssignment.role_id == roles[role].id,
            RoleAssignment.assigned_at == _utc(at)))
        if exists is None:
            session.add(RoleAssignment(user_id=user.id, role_id=roles[role].id, is_test=True,
                                       assigned_by_id=users[by].id if by else None, assigned_at=_utc(at),
                                       expires_at=_utc(expires) if expires else None, reason=reason,
                                       notify_user=True))
    for email, perm, action, expires, reason, by, at in OVERRIDES:
        user = users[email]
        exists = session.scalar(select(PermissionOverride).where(
            PermissionOverride.user_id == user.id, PermissionOverride.permission == perm,
            PermissionOverride.granted_at == _utc(at)))
        if exists is None:
            session.add(PermissionOverride(user_id=user.id, permission=perm, action=action, reason=reason,
                                           expires_at=_utc(expires) if expires else None, is_test=True,
                                           granted_by_id=users[by].id, granted_at=_utc(at)))
    session.flush()
    return users


def admin_totp_uri() -> str:
    return pyotp.TOTP(ADMIN_TOTP_SECRET).provisioning_uri(name="admin.test@rephlo.ai", issuer_name="Rephlo Admin")


# Order matters: credits needs the personas, billing their balances, coupons billing's subscriptions.
SEEDERS = [seed_personas, seed_api_access, seed_credits, seed_billing, seed_licensing, seed_coupons]
