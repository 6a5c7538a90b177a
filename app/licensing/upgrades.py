"""App versions and paid major-version upgrades.

Pricing (DESIGN.md §4): standard $99; early-bird $79 from the day the target major
version is released (day 0) up to and including day 30 (UTC calendar days), so day 30
is early-bird and day 31 is not; loyalty $69 once the license has a completed upgrade.
The lowest price that applies wins. "Target version" is the upgrade's major release:
the earliest released stable version of that major (normally N.0.0), so naming a later
minor (2.5.0) buys the same upgrade at the same price as 2.0.0 on the same day.

An upgrade moves a license from the first major it does not cover to the one after:
eligible until 2.0.0 -> buy any released 2.x -> eligible until 3.0.0. It is created
`pending`; the billing gateway takes the payment and calls `complete_upgrade()` (or
`fail_upgrade()`); `refund_upgrade()` puts the eligibility back.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.core import audit, clock, testmode
from app.core.errors import DomainError, NotFound
from app.core.port import Port
from app.licensing import cache, semver
from app.licensing.activations import require_usable
from app.licensing.models import AppVersion, License, LicenseUpgrade
from app.licensing.service import lock

STANDARD_PRICE = Decimal("99.00")
EARLY_BIRD_PRICE = Decimal("79.00")
LOYALTY_PRICE = Decimal("69.00")
EARLY_BIRD_DAYS = 30

# Selling an upgrade charges a card: billing's work (billing/license_sales.py builds on licensing).
# app/ports.py plugs billing's buy_upgrade in; the licence-key route calls sell().
_seller: Port[Callable[..., LicenseUpgrade]] = Port("upgrade seller")
use_seller = _seller.plug


def sell(session, user, lic: License, to_version: str, *, payment_method: str | None = None) -> LicenseUpgrade:
    """The upgrade at its quoted price, charged to `payment_method` or the owner's card on file."""
    return _seller()(session, user, lic, to_version, payment_method=payment_method)


# ---- app versions -------------------------------------------------------------------------

def list_versions(session) -> list[AppVersion]:
    return list(session.scalars(select(AppVersion).order_by(AppVersion.version_key.desc())))


def find_version(session, version: semver.Version) -> AppVersion | None:
    return session.scalar(select(AppVersion).where(AppVersion.version_key == version.sort_key()))


def get_version(session, version_id: int) -> AppVersion:
    row = session.get(AppVersion, version_id)
    if row is None:
        raise NotFound("app version")
    return row


def _release_date(value) -> date:
    if not isinstance(value, date):
        raise DomainError("invalid_date", "Enter the release date as YYYY-MM-DD.", "release_date")
    return value.date() if isinstance(value, datetime) else value


def create_version(session, version: str, release_date, notes: str = "", *, actor) -> AppVersion:
    parsed = semver.parse(version, "version")
    if parsed.build:
        raise DomainError("invalid_version", "Leave build metadata (+...) out of product versions.", "version")
    if find_version(session, parsed) is not None:
        raise DomainError("duplicate_version", f"Version {parsed} exists already.", "version")
    row = AppVersion(release_date=_release_date(release_date), notes=(notes or "").strip())
    row.set_version(str(parsed))
    session.add(row)
    session.flush()
    audit.record(session, "app_versions.created", actor=actor, target_type="app_versions", target_id=row.id,
                 target_label=row.version, after={"version": row.version, "release_date": str(row.release_date)},
                 is_test=False)
    return row


def update_version(session, row: AppVersion, release_date, notes: str, *, actor, reason: str | None = None) -> AppVersion:
    before = {"release_date": str(row.release_date), "notes": row.notes}
    row.release_date, row.notes = _release_date(release_date), (notes or "").strip()
    after = {"release_date": str(row.release_date), "notes": row.notes}
    if before == after:
        raise DomainError("unchanged", "Nothing changed.", "release_date")
    audit.record(session, "app_versions.updated", actor=actor, target_type="app_versions", target_id=row.id,
                 target_label=row.version, before=before, after=after, reason=reason, is_test=False)
    return row


def major_release(session, major: int, today: date) -> AppVersion | None:
    """The first released stable version of a major: the date early-bird counts from."""
    for row in session.scalars(select(AppVersion).where(AppVersion.version_key.like(f"{major:010d}.%"))
                               .order_by(AppVersion.version_key)):
        if not row.parsed.is_prerelease and row.release_date <= today:
            return row
    return None


# ---- quotes -------------------------------------------------------------------------------

@dataclass
class Quote:
    license: License
    from_version: str
    to_version: str
    price: Decimal
    pricing_rule: str
    standard_price: Decimal
    early_bird: bool
    early_bird_until: date | None
    loyalty: bool
    days_since_release: int | None
    eligible_until_after: str

    def as_dict(self) -> dict:
        return {"from_version": self.from_version, "to_version": self.to_version,
                "price_usd": f"{self.price:.2f}", "pricing_rule": self.pricing_rule,
                "standard_price_usd": f"{self.standard_price:.2f}", "early_bird": self.early_bird,
                "early_bird_until": self.early_bird_until.isoformat() if self.early_bird_until else None,
                "loyalty": self.loyalty, "eligible_until_after": self.eligible_until_after}


def _base_version(session, lic: License) -> str:
    """What the license upgrades from: the last completed upgrade's target, else the purchase."""
    last = session.scalar(select(LicenseUpgrade.to_version).where(
        LicenseUpgrade.license_id == lic.id, LicenseUpgrade.status == "completed")
        .order_by(LicenseUpgrade.completed_at.desc(), LicenseUpgrade.id.desc()).limit(1))
    return last or lic.purchased_version


def _has_completed_upgrade(session, lic: License) -> bool:
    return session.scalar(select(LicenseUpgrade.id).where(
        LicenseUpgrade.license_id == lic.id, LicenseUpgrade.status == "completed").limit(1)) is not None


def quote(session, lic: License, to_version, at: datetime | None = None, field: str = "to") -> Quote:
    """Price an upgrade of `lic` to `to_version` at `at`; raises with a stable code when it is not possible."""
    at = at or clock.now()
    today = at.date()
    target = semver.parse(to_version, field)
    require_usable(lic, at)
    current_from, current_until = lic.eligible_from, lic.eligible_until
    if target < current_until:
        if target < current_from:
            message = f"{target} is older than {current_from}, the version this license was bought for."
        else:
            message = (f"This license already covers {target} (eligible from {current_from} "
                       f"until {current_until}, not included).")
        raise DomainError("upgrade_not_newer", message, field)
    if target.major != current_until.major:
        raise DomainError("upgrade_skips_major",
                          f"Upgrades go one major version at a time: this license can upgrade to "
                          f"{current_until.major}.x next.", field)
    row = find_version(session, target)
    if row is None:
        raise DomainError("unknown_version", f"{target} is not a version of the app.", field)
    if row.release_date > today:
        raise DomainError("version_not_released", f"{target} is released on {row.release_date}.", field)
    release = major_release(session, target.major, today) or row
    days = (today - release.release_date).days
    early_bird = 0 <= days <= EARLY_BIRD_DAYS
    loyalty = _has_completed_upgrade(session, lic)
    options = [(STANDARD_PRICE, "standard")]
    if early_bird:
        options.append((EARLY_BIRD_PRICE, "early_bird"))
    if loyalty:
        options.append((LOYALTY_PRICE, "loyalty"))
    price, rule = min(options, key=lambda o: o[0])
    return Quote(license=lic, from_version=_base_version(session, lic), to_version=str(target), price=price,
                 pricing_rule=rule, standard_price=STANDARD_PRICE, early_bird=early_bird,
                 early_bird_until=release.release_date + timedelta(days=EARLY_BIRD_DAYS), loyalty=loyalty,
                 days_since_release=days, eligible_until_after=str(semver.Version(target.major + 1, 0, 0)))


# ---- the upgrade's life -------------------------------------------------------------------

def pending_upgrade(session, license_id: int) -> LicenseUpgrade | None:
    return session.scalar(select(LicenseUpgrade).where(LicenseUpgrade.license_id == license_id,
                                                       LicenseUpgrade.status == "pending"))


def create_upgrade(session, lic: License, to_version, *, actor=None, at: datetime | None = None,
                   field: str = "to") -> LicenseUpgrade:
    """Record the purchase at the quoted price, pending payment (one pending upgrade per license)."""
    at = at or clock.now()
    lic = lock(session, lic.id)
    q = quote(session, lic, to_version, at, field)
    waiting = pending_upgrade(session, lic.id)
    if waiting is not None:
        raise DomainError("upgrade_pending",
                          f"An upgrade to {waiting.to_version} is already awaiting payment for this license.", field)
    upgrade = LicenseUpgrade(license_id=lic.id, license=lic, user_id=lic.user_id, from_version=q.from_version,
                             to_version=q.to_version, price=q.price, pricing_rule=q.pricing_rule, status="pending",
                             purchased_at=at, new_eligible_until=q.eligible_until_after,
                             is_test=testmode.is_test_row(lic))
    session.add(upgrade)
    session.flush()
    if actor is not None:
        audit.record(session, "licenses.upgrade_created", actor=actor, target=lic,
                     after={"upgrade_id": upgrade.id, "to_version": upgrade.to_version, "price": f"{upgrade.price:.2f}"})
    return upgrade


def get_upgrade(session, upgrade_id: int) -> LicenseUpgrade:
    row = session.get(LicenseUpgrade, upgrade_id)
    if row is None:
        raise NotFound("upgrade")
    return row


def complete_upgrade(session, upgrade: LicenseUpgrade, payment_reference: str,
                     at: datetime | None = None) -> LicenseUpgrade:
    """Billing seam: the payment succeeded, so the license becomes eligible for the next major."""
    ref = (payment_reference or "").strip()
    if not ref:
        raise DomainError("missing_payment_reference", "A payment reference is required.", "payment_reference")
    at = at or clock.now()
    lic = lock(session, upgrade.license_id)
    if upgrade.status != "pending":
        raise DomainError("invalid_transition", f"A {upgrade.status} upgrade cannot be completed.", "status")
    if lic.status == "revoked":
        raise DomainError("license_revoked", "This license was revoked; refund the upgrade instead.")
    before = lic.snapshot()
    upgrade.previous_eligible_until = lic.eligible_until_version
    if semver.parse(upgrade.new_eligible_until) > lic.eligible_until:
        lic.set_versions(eligible_until=upgrade.new_eligible_until)
    upgrade.status, upgrade.completed_at, upgrade.payment_reference = "completed", at, ref
    audit.record(session, "licenses.upgrade_completed", actor=None, target=lic, before=before,
                 after={**lic.snapshot(), "upgrade_id": upgrade.id, "payment_reference": ref})
    cache.invalidate(session, lic.license_key)
    return upgrade


def fail_upgrade(session, upgrade: LicenseUpgrade, reason: str, at: datetime | None = None) -> LicenseUpgrade:
    """Billing seam: the payment failed or was abandoned; the license is unchanged."""
    if upgrade.status != "pending":
        raise DomainError("invalid_transition", f"A {upgrade.status} upgrade cannot fail.", "status")
    upgrade.status, upgrade.failed_at = "failed", at or clock.now()
    upgrade.failure_reason = (reason or "payment failed").strip()[:1000]
    return upgrade


def refund_upgrade(session, upgrade: LicenseUpgrade, refund_reference: str, *, actor=None,
                   at: datetime | None = None) -> LicenseUpgrade:
    """Billing seam: money went back, so eligibility goes back (unless a later change built on it)."""
    lic = lock(session, upgrade.license_id)
    if upgrade.status != "completed":
        raise DomainError("invalid_transition", f"A {upgrade.status} upgrade cannot be refunded.", "status")
    if lic.eligible_until_version != upgrade.new_eligible_until:
        raise DomainError("upgrade_superseded", "Eligibility changed since this upgrade (a later upgrade or an "
                          "extension); refund that first.", "status")
    before = lic.snapshot()
    lic.set_versions(eligible_until=upgrade.previous_eligible_until)
    upgrade.status, upgrade.refunded_at = "refunded", at or clock.now()
    audit.record(session, "licenses.upgrade_refunded", actor=actor, target=lic, before=before,
                 after={**lic.snapshot(), "upgrade_id": upgrade.id, "refund_reference": refund_reference})
    cache.invalidate(session, lic.license_key)
    return upgrade


def upgrades_for(session, license_id: int) -> list[LicenseUpgrade]:
    return list(session.scalars(select(LicenseUpgrade).where(LicenseUpgrade.license_id == license_id)
                                .order_by(LicenseUpgrade.purchased_at.desc(), LicenseUpgrade.id.desc())))
