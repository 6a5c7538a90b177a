"""Seed 001 Plan 110: licenses, devices and the three upgrade examples, reproduced by the rules."""
from decimal import Decimal

from sqlalchemy import select

from app.licensing import service, validation
from app.licensing.models import License, LicenseUpgrade
from app.licensing.seed import fingerprint, seed_licensing


def test_seed_reproduces_plan_110_and_is_idempotent(session):
    seed_licensing(session, log=lambda *_: None)
    seed_licensing(session, log=lambda *_: None)
    lic = {l.license_key: l for l in session.scalars(select(License))}
    win, ent, trial = lic["PERM-2025-WIN-001-BETA"], lic["PERM-2025-ENT-002-GOLD"], lic["PERM-2024-TRIAL-003"]
    assert len(lic) == 3 and all(l.is_test for l in lic.values())
    assert (win.purchase_price, win.max_activations, service.active_count(session, win.id)) == (Decimal("299.99"), 3, 2)
    assert (ent.purchase_price, ent.max_activations, service.active_count(session, ent.id)) == (Decimal("499.99"), 5, 3)
    assert (trial.status, trial.eligible_until_version) == ("expired", "1.5.0")
    rows = session.scalars(select(LicenseUpgrade).order_by(LicenseUpgrade.purchased_at)).all()
    got = [(r.license.license_key, r.from_version, r.to_version, r.price, r.pricing_rule, r.status,
            r.payment_reference) for r in rows]
    assert got == [
        ("PERM-2025-WIN-001-BETA", "1.0.0", "2.0.0", Decimal("79.00"), "early_bird", "completed", "pi_upgrade_001"),
        ("PERM-2025-WIN-001-BETA", "2.0.0", "3.0.0", Decimal("69.00"), "loyalty", "completed", "pi_upgrade_002"),
        ("PERM-2025-ENT-002-GOLD", "1.5.0", "2.5.0", Decimal("99.00"), "standard", "pending", None),
    ]
    # two completed upgrades: 2.0.0 -> 3.0.0 -> 4.0.0; the pending one has not moved license 2 yet
    assert (win.eligible_until_version, ent.eligible_until_version) == ("4.0.0", "2.0.0")
    desktop = fingerprint("CPU:Intel-i7-12700K | MAC:00:1A:2B:3C:4D:5E | DISK:SERIAL123 | OS:Windows-10-21H2")
    assert validation.validate(session, win.license_key, desktop, "3.0.0").code == "VALID"
    old_linux = fingerprint("CPU:Intel-i5-9400 | MAC:11:22:33:44:55:66 | DISK:OLDSERIAL | OS:Linux-5.15.0")
    assert validation.validate(session, win.license_key, old_linux, "1.0.0").code == "FINGERPRINT_MISMATCH"
