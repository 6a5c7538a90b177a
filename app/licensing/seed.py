"""Seed 001, Plan 110: app versions, the three licenses, their devices and the three upgrades.

Idempotent (keyed by license key / version). Owners are test accounts. Fingerprints are
the SHA-256 of the seed's own strings. The upgrades go through the real pricing rules at
the seed's timestamps, and the seeder stops if a price differs from the seed's figure.

Where seed 001 contradicts itself the rules win (DESIGN.md): license 2 is listed as
eligible until 3.0.0 yet has a pending 1.5.0 -> 2.5.0 upgrade, which a license already
covering 2.x could not buy; it is issued eligible until 2.0.0 and reaches the seed's
3.0.0 when that upgrade completes. License 1's two completed upgrades (to 2.0.0, then
3.0.0) move it from 2.0.0 to 4.0.0. Seed 001 says license 2 has 3 active devices but
lists none; three plausible workstations are added so the count matches.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from app.core import seedtime
from app.licensing import upgrades
from app.licensing.models import Activation, AppVersion, License
from app.users.models import User

VERSIONS = [
    ("1.0.0", "2024-06-03", "First perpetual release."),
    ("1.5.0", "2025-03-10", "Offline mode and the model picker."),
    ("2.0.0", "2025-10-01", "Major release: new editor, plugins (paid upgrade)."),
    ("2.5.0", "2025-10-29", "Team sharing."),
    ("3.0.0", "2025-11-03", "Major release: local models (paid upgrade)."),
]

OWNERS = [
    ("perpetual.user1@example.com", "John", "Perpetual"),
    ("perpetual.user2@example.com", "Enterprise", "Buyer"),
    ("perpetual.user3@example.com", "Trial", "Customer"),
]

LICENSES = [
    {"key": "PERM-2025-WIN-001-BETA", "owner": OWNERS[0][0], "price": "299.99", "purchased": "1.0.0",
     "until": "2.0.0", "max": 3, "status": "active", "purchased_at": "2025-10-15T00:00:00Z",
     "activated_at": "2025-10-15T10:30:00Z", "expires_at": None},
    {"key": "PERM-2025-ENT-002-GOLD", "owner": OWNERS[1][0], "price": "499.99", "purchased": "1.5.0",
     "until": "2.0.0", "max": 5, "status": "active", "purchased_at": "2025-09-01T00:00:00Z",
     "activated_at": "2025-09-01T14:00:00Z", "expires_at": None},
    {"key": "PERM-2024-TRIAL-003", "owner": OWNERS[2][0], "price": "99.99", "purchased": "1.0.0",
     "until": "1.5.0", "max": 1, "status": "expired", "purchased_at": "2024-11-01T00:00:00Z",
     "activated_at": None, "expires_at": "2025-11-01T00:00:00Z"},
]

ACTIVATIONS = [
    {"license": "PERM-2025-WIN-001-BETA",
     "source": "CPU:Intel-i7-12700K | MAC:00:1A:2B:3C:4D:5E | DISK:SERIAL123 | OS:Windows-10-21H2",
     "device_name": "John's Desktop", "os_type": "Windows", "os_version": "10.0.19045",
     "cpu_info": "Intel Core i7-12700K @ 3.60GHz", "status": "active", "activated_at": "2025-10-15T10:30:00Z",
     "last_seen_at": "2025-11-08T15:45:00Z", "deactivated_at": None},
    {"license": "PERM-2025-WIN-001-BETA",
     "source": "CPU:Apple-M1 | MAC:AA:BB:CC:DD:EE:FF | DISK:SERIALABC | OS:macOS-14.1.1",
     "device_name": "John's MacBook Pro", "os_type": "macOS", "os_version": "14.1.1",
     "cpu_info": "Apple Silicon M1", "status": "active", "activated_at": "2025-10-20T09:15:00Z",
     "last_seen_at": "2025-11-07T12:30:00Z", "deactivated_at": None},
    {"license": "PERM-2025-WIN-001-BETA",
     "source": "CPU:Intel-i5-9400 | MAC:11:22:33:44:55:66 | DISK:OLDSERIAL | OS:Linux-5.15.0",
     "device_name": "John's Old Linux Box", "os_type": "Linux", "os_version": "5.15.0-84-generic",
     "cpu_info": "", "status": "deactivated", "activated_at": "2025-08-01T08:00:00Z",
     "last_seen_at": None, "deactivated_at": "2025-11-01T16:20:00Z"},
] + [
    {"license": "PERM-2025-ENT-002-GOLD", "source": f"seed:PERM-2025-ENT-002-GOLD:workstation-{n}",
     "device_name": f"Enterprise Workstation {n}", "os_type": "Windows", "os_version": "11.0.22631",
     "cpu_info": "AMD Ryzen 9 7950X", "status": "active", "activated_at": f"2025-09-0{n}T14:00:00Z",
     "last_seen_at": f"2025-11-0{n + 5}T09:00:00Z", "deactivated_at": None}
    for n in (1, 2, 3)
]

# license, to_version, purchased_at, expected price, payment reference (None: still pending)
UPGRADES = [
    ("PERM-2025-WIN-001-BETA", "2.0.0", "2025-10-20T12:00:00Z", "79.00", "pi_upgrade_001"),
    ("PERM-2025-ENT-002-GOLD", "2.5.0", "2025-11-05T10:30:00Z", "99.00", None),
    ("PERM-2025-WIN-001-BETA", "3.0.0", "2025-11-04T14:15:00Z", "69.00", "pi_upgrade_002"),
]


# The licensing plan's own today (its devices last checked in the day before): its activations
# and upgrades land in the last 30 days.
PLAN_TODAY = date(2025, 11, 9)


def _at(text: str | None) -> datetime | None:
    return seedtime.at(text, PLAN_TODAY)


def _utc(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc) if text else None


def fingerprint(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def seed_versions(session, today: bool = False) -> None:
    """The seed's releases; on today's calendar (core/seedtime.py) for `flask seed`, at their
    own 2025 dates for tests that reproduce the seed's early-bird windows on a test clock."""
    for version, released, notes in VERSIONS:
        if session.scalar(select(AppVersion).where(AppVersion.version == version)) is None:
            day = date.fromisoformat(released)
            row = AppVersion(release_date=seedtime.day(day, PLAN_TODAY) if today else day, notes=notes)
            row.set_version(version)
            session.add(row)
    session.flush()


def _on_release_calendar(session, to_version: str, at: str) -> datetime:
    """An upgrade's seed time kept as far from its target's release as in the seed, whichever
    calendar the releases are on (so the early-bird and loyalty prices come out as seeded)."""
    released = session.scalar(select(AppVersion.release_date).where(AppVersion.version == to_version))
    seeded = date.fromisoformat(next(r for v, r, _ in VERSIONS if v == to_version))
    return _utc(at) + (released - seeded)


def seed_licensing(session, log=print) -> None:
    """Licenses and devices on today's calendar (core/seedtime.py): activations seen lately."""
    seed_versions(session, today=True)
    owners = {}
    for email, first, last in OWNERS:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, first_name=first, last_name=last, account_type="test", email_verified=True)
            session.add(user)
            log(f"  created {email}")
        owners[email] = user
    session.flush()
    licenses = {}
    for spec in LICENSES:
        lic = session.scalar(select(License).where(License.license_key == spec["key"]))
        if lic is not None:
            licenses[spec["key"]] = lic
            continue
        owner = owners[spec["owner"]]
        lic = License(license_key=spec["key"], user_id=owner.id, owner=owner, status=spec["status"],
                      purchase_price=Decimal(spec["price"]), max_activations=spec["max"],
                      purchased_at=_at(spec["purchased_at"]), activated_at=_at(spec["activated_at"]),
                      expires_at=_at(spec["expires_at"]), status_changed_at=_at(spec["purchased_at"]),
                      created_at=_at(spec["purchased_at"]), is_test=True)
        lic.set_versions(spec["purchased"], spec["until"])
        session.add(lic)
        session.flush()
        licenses[spec["key"]] = lic
        log(f"  license {lic.license_key}")
        for device in (d for d in ACTIVATIONS if d["license"] == spec["key"]):
            session.add(Activation(
                license_id=lic.id, license=lic, fingerprint=fingerprint(device["source"]), status=device["status"],
                device_name=device["device_name"], os_type=device["os_type"], os_version=device["os_version"],
                cpu_info=device["cpu_info"], activated_at=_at(device["activated_at"]),
                last_seen_at=_at(device["last_seen_at"]) or _at(device["activated_at"]),
                deactivated_at=_at(device["deactivated_at"]), created_at=_at(device["activated_at"]),
                is_test=True))
        session.flush()
        for key, to_version, at, price, reference in sorted(
                (u for u in UPGRADES if u[0] == spec["key"]), key=lambda u: u[2]):
            at = _on_release_calendar(session, to_version, at)
            upgrade = upgrades.create_upgrade(session, lic, to_version, at=at)
            if upgrade.price != Decimal(price):
                raise RuntimeError(f"seed 001 prices {key} -> {to_version} at {price}, the rules say {upgrade.price}")
            if reference:
                upgrades.complete_upgrade(session, upgrade, reference, at=at)
    session.flush()
