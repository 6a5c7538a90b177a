"""License lifecycle: keys, issuing, status transitions and the other staff actions, BYOK.

Every staff action locks the license row, checks the transition table, writes one
audit row with before/after and the reason, and invalidates the validation cache.
The billing gateway is not part of this package: a license sold through it is issued
`pending` and the gateway calls `complete_purchase()` once the payment succeeds.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import contains_eager

from app.core import audit, clock, sorting, testmode
from app.core.audit import AuditEntry, require_reason
from app.core.errors import DomainError, NotFound
from app.core.money import money
from app.core.pagination import Page
from app.licensing import cache, semver
from app.licensing.models import LICENSE_STATUSES, Activation, License
from app.users.models import User

KEY_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: nothing to misread
KEY_PREFIX = "PERM"
_KEY_SHAPE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")
MAX_ACTIVATIONS_CEILING = 1000

# status -> statuses it may move to. Revoked is final; an expired license can still be revoked.
TRANSITIONS: dict[str, set[str]] = {
    "pending": {"active", "revoked"},
    "active": {"suspended", "revoked", "expired"},
    "suspended": {"active", "revoked", "expired"},
    "expired": {"revoked"},
    "revoked": set(),
}


def generate_key() -> str:
    """PERM-XXXX-XXXX-XXXX-XXXX from a 30-letter alphabet: 16 random characters, ~78 bits."""
    groups = ["".join(secrets.choice(KEY_ALPHABET) for _ in range(4)) for _ in range(4)]
    return "-".join([KEY_PREFIX, *groups])


def normalize_key(raw, field: str = "license_key") -> str:
    """Upper-case and trim; refuse anything that cannot be a key before touching the database."""
    key = raw.strip().upper() if isinstance(raw, str) else ""
    if not key:
        raise DomainError("missing_license_key", "Enter the license key.", field)
    if len(key) > 64 or not _KEY_SHAPE.match(key):
        raise DomainError("invalid_license_key",
                          "A license key looks like PERM-XXXX-XXXX-XXXX-XXXX (letters, digits and dashes).", field)
    return key


def get_license(session, license_id: int) -> License:
    lic = session.get(License, license_id)
    if lic is None:
        raise NotFound("license")
    return lic


def find_by_key(session, raw_key) -> License:
    key = normalize_key(raw_key)
    lic = session.scalar(select(License).where(License.license_key == key))
    if lic is None:
        raise DomainError("license_not_found", "No license has this key.", "license_key", status=404)
    return lic


def lock(session, license_id: int) -> License:
    """SELECT ... FOR UPDATE on the license row: every seat or status change goes through here."""
    lic = session.scalar(select(License).where(License.id == license_id).with_for_update(of=License)
                         .execution_options(populate_existing=True))
    if lic is None:
        raise NotFound("license")
    return lic


def active_count(session, license_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Activation).where(
        Activation.license_id == license_id, Activation.status == "active")) or 0


def is_expired(lic: License, at: datetime | None = None) -> bool:
    return lic.status == "expired" or (lic.expires_at is not None and lic.expires_at <= (at or clock.now()))


def _reason(reason: str | None, required: bool = True) -> str | None:
    if required or (reason or "").strip():
        return require_reason(reason, minimum=5 if required else 1)
    return None


def _max_activations(value, field: str = "max_activations") -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DomainError("invalid_max_activations", "Max activations is a whole number.", field) from None
    if not 1 <= number <= MAX_ACTIVATIONS_CEILING:
        raise DomainError("invalid_max_activations",
                          f"Max activations is from 1 to {MAX_ACTIVATIONS_CEILING}.", field)
    return number


def create_license(session, *, owner: User, actor, purchase_price, purchased_version: str,
                   eligible_until_version: str | None = None, max_activations=3, status: str = "active",
                   expires_at: datetime | None = None, license_key: str | None = None,
                   purchased_at: datetime | None = None, reason: str | None = None) -> License:
    """Issue a license to a user. `pending` waits for `complete_purchase()` from billing."""
    if status not in ("active", "pending"):
        raise DomainError("invalid_status", "A new license is either active or pending payment.", "status")
    if owner.deleted_at is not None:
        raise DomainError("owner_deleted", "This user account is deleted.", "owner_email")
    price = money(purchase_price, "purchase_price")
    if price < 0:
        raise DomainError("invalid_amount", "The purchase price cannot be negative.", "purchase_price")
    purchased = semver.parse(purchased_version, "purchased_version")
    until = (semver.parse(eligible_until_version, "eligible_until_version") if eligible_until_version
             else purchased.next_major())
    if until <= purchased:
        raise DomainError("invalid_eligibility", "Eligible-until must be above the purchased version.",
                          "eligible_until_version")
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise DomainError("invalid_expiry", "The expiry date must be in the future.", "expires_at")
    key = normalize_key(license_key) if license_key else _unique_key(session)
    if license_key and session.scalar(select(License.id).where(License.license_key == key)):
        raise DomainError("duplicate_license_key", "A license with this key exists already.", "license_key")
    lic = License(license_key=key, user_id=owner.id, owner=owner, status=status, purchase_price=price,
                  max_activations=_max_activations(max_activations), purchased_at=purchased_at or now,
                  expires_at=expires_at, status_changed_at=now, created_by_id=getattr(actor, "id", None),
                  is_test=testmode.is_test_row(owner))
    lic.set_versions(str(purchased), str(until))
    session.add(lic)
    session.flush()
    audit.record(session, "licenses.created", actor=actor, target=lic, before=None,
                 after={**lic.snapshot(), "owner": owner.email, "purchase_price": str(price),
                        "purchased_version": lic.purchased_version}, reason=_reason(reason, required=False))
    return lic


def _unique_key(session) -> str:
    for _ in range(5):
        key = generate_key()
        if not session.scalar(select(License.id).where(License.license_key == key)):
            return key
    raise RuntimeError("could not draw an unused license key")  # 78 bits: never in practice


def _transition(session, lic: License, to: str, *, actor, reason: str | None, action: str,
                at: datetime | None = None) -> License:
    lic = lock(session, lic.id)
    if to not in TRANSITIONS[lic.status]:
        final = " Revoked is final." if lic.status == "revoked" else ""
        raise DomainError("invalid_transition", f"A {lic.status} license cannot become {to}.{final}", "status")
    before = lic.snapshot()
    lic.status, lic.status_changed_at, lic.status_reason = to, at or clock.now(), reason
    audit.record(session, action, actor=actor, target=lic, before=before, after=lic.snapshot(), reason=reason)
    cache.invalidate(session, lic.license_key)
    return lic


def suspend(session, lic: License, *, actor, reason: str) -> License:
    return _transition(session, lic, "suspended", actor=actor, reason=_reason(reason), action="licenses.suspended")


def reinstate(session, lic: License, *, actor, reason: str) -> License:
    if lic.status == "suspended" and is_expired(lic):
        raise DomainError("license_expired", "This license has passed its expiry date; it cannot be reinstated.")
    if lic.status != "suspended":
        raise DomainError("invalid_transition", f"Only a suspended license can be reinstated (this one is {lic.status}).",
                          "status")
    return _transition(session, lic, "active", actor=actor, reason=_reason(reason), action="licenses.reinstated")


def mark_active(session, lic: License, *, actor, reason: str) -> License:
    """Staff turn a pending license on without a charge (paid elsewhere, goodwill): reason required."""
    if lic.status != "pending":
        raise DomainError("invalid_transition", "Only a pending license can be marked active.", "status")
    return _transition(session, lic, "active", actor=actor, reason=_reason(reason), action="licenses.marked_active")


def revoke(session, lic: License, *, actor, reason: str) -> License:
    return _transition(session, lic, "revoked", actor=actor, reason=_reason(reason), action="licenses.revoked")


def complete_purchase(session, lic: License, payment_reference: str) -> License:
    """Billing seam: the gateway took the payment for a pending license."""
    ref = (payment_reference or "").strip()
    if not ref:
        raise DomainError("missing_payment_reference", "A payment reference is required.", "payment_reference")
    lic = _transition(session, lic, "active", actor=None, reason=f"payment {ref}", action="licenses.purchase_completed")
    lic.payment_reference = ref
    return lic


def change_max_activations(session, lic: License, new_max, *, actor, reason: str) -> License:
    reason = _reason(reason)
    new_max = _max_activations(new_max)
    lic = lock(session, lic.id)
    if lic.status == "revoked":
        raise DomainError("license_revoked", "This license is revoked; nothing about it can change.")
    in_use = active_count(session, lic.id)
    if new_max < in_use:
        raise DomainError("below_active_count",
                          f"{in_use} devices are active; deactivate some before going below {in_use}.",
                          "max_activations")
    if new_max == lic.max_activations:
        raise DomainError("unchanged", f"Max activations is already {new_max}.", "max_activations")
    before = lic.snapshot()
    lic.max_activations = new_max
    audit.record(session, "licenses.max_activations_changed", actor=actor, target=lic, before=before,
                 after=lic.snapshot(), reason=reason)
    cache.invalidate(session, lic.license_key)
    return lic


def extend_eligibility(session, lic: License, new_until: str, *, actor, reason: str) -> License:
    """Move eligible-until up (goodwill, support cases). Going down is not an extension."""
    reason = _reason(reason)
    target = semver.parse(new_until, "eligible_until_version")
    lic = lock(session, lic.id)
    if lic.status == "revoked":
        raise DomainError("license_revoked", "This license is revoked; nothing about it can change.")
    if target <= lic.eligible_until:
        raise DomainError("not_an_extension",
                          f"The license is already eligible until {lic.eligible_until_version}; "
                          "choose a higher version.", "eligible_until_version")
    before = lic.snapshot()
    lic.set_versions(eligible_until=str(target))
    audit.record(session, "licenses.eligibility_extended", actor=actor, target=lic, before=before,
                 after=lic.snapshot(), reason=reason)
    cache.invalidate(session, lic.license_key)
    return lic


def expire_due(session, at: datetime | None = None) -> int:
    """Move active/suspended licenses past their expires_at to expired (system audit rows)."""
    at = at or clock.now()
    ids = session.scalars(select(License.id).where(
        License.status.in_(("active", "suspended")), License.expires_at.is_not(None), License.expires_at <= at)).all()
    for license_id in ids:
        lic = lock(session, license_id)
        if lic.status in ("active", "suspended") and is_expired(lic, at):
            _transition(session, lic, "expired", actor=None, reason="expiry date reached",
                        action="licenses.expired", at=at)
    return len(ids)


def byok_license_for(session, user, fingerprint: str | None = None, at: datetime | None = None) -> License | None:
    """The user's valid perpetual license, if any: usage is then recorded with zero credits.

    Valid = active and not past its expiry. With a fingerprint, that device must also be
    an active activation of the license. Version eligibility is not checked here: usage
    calls do not carry the app version.
    """
    if user is None:
        return None
    at = at or clock.now()
    stmt = (select(License).where(License.user_id == user.id, License.status == "active",
                                  or_(License.expires_at.is_(None), License.expires_at > at))
            .order_by(License.eligible_until_key.desc(), License.id))
    if fingerprint is not None:
        stmt = stmt.where(License.id.in_(select(Activation.license_id).where(
            Activation.fingerprint == fingerprint.strip().lower(), Activation.status == "active")))
    return session.scalars(stmt.limit(1)).first()


@dataclass
class LicenseFilters:
    status: str | None = None
    version: str | None = None
    owner: str | None = None
    data: str = "production"  # production | test | all


def list_query(filters: LicenseFilters) -> Select:
    """Licenses matching the list screen's filters (the caller pages it newest first)."""
    stmt = select(License).join(User, User.id == License.user_id).options(contains_eager(License.owner))
    if filters.status:
        if filters.status not in LICENSE_STATUSES:
            raise DomainError("invalid_status", "Unknown status.", "status")
        stmt = stmt.where(License.status == filters.status)
    if filters.version:
        key = semver.parse(filters.version, "version").sort_key()
        stmt = stmt.where(and_(License.purchased_version_key <= key, License.eligible_until_key > key))
    if filters.owner:
        needle = filters.owner.strip().lower()
        stmt = stmt.where(or_(User.email.contains(needle, autoescape=True),
                              License.license_key == needle.upper()))
    if filters.data == "production":
        stmt = stmt.where(License.is_test.is_(False))
    elif filters.data == "test":
        stmt = stmt.where(License.is_test.is_(True))
    return stmt


# Sortable columns of the licenses list (?sort=purchased, ?sort=-key...).
SORTS = {"created": License.created_at, "purchased": License.purchased_at, "key": License.license_key,
         "status": License.status}
DEFAULT_SORT = "-created"


def list_page(session, filters: LicenseFilters, limit: int, cursor: str | None, sort=None) -> Page:
    sort = sort or sorting.parse(None, SORTS, DEFAULT_SORT)
    return sorting.page(session, list_query(filters), SORTS[sort.key], License.id, sort, limit, cursor)


def export_rows(session, filters: LicenseFilters, sort):
    """The filtered, sorted list, every row, for the CSV export."""
    for lic in sorting.stream(session, list_query(filters), SORTS[sort.key], License.id, sort):
        yield [lic.license_key, lic.owner.email, lic.status, lic.purchased_version, lic.eligible_until_version,
               lic.max_activations, str(lic.purchase_price), lic.purchased_at.isoformat(),
               "test" if lic.is_test else "live"]


def active_counts(session, license_ids: list[int]) -> dict[int, int]:
    if not license_ids:
        return {}
    rows = session.execute(select(Activation.license_id, func.count()).where(
        Activation.license_id.in_(license_ids), Activation.status == "active").group_by(Activation.license_id))
    return {license_id: count for license_id, count in rows}


def owner_by_email(session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise DomainError("owner_not_found", "No user has this email.", "owner_email")
    return user


def price_text(value: Decimal) -> str:
    return f"{value:.2f}"


def audit_history(session, lic: License, limit: int = 50):
    """The license's audit rows (staff actions, billing completions, expiry), newest first."""
    return list(session.scalars(select(AuditEntry).where(
        AuditEntry.target_type == "licenses", AuditEntry.target_id == str(lic.id))
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)))
