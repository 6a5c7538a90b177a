"""Upgrade pricing (standard, early-bird day 30 vs 31, loyalty, lowest wins), the upgrade's
life (pending -> completed/failed -> refunded) and refusals that change nothing."""
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.core.errors import DomainError
from app.licensing import service, upgrades
from app.licensing.models import LicenseUpgrade


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)


def upgrade_count(session):
    return session.scalar(select(func.count()).select_from(LicenseUpgrade))


@pytest.mark.parametrize("when,price,rule", [
    ("2025-10-01", "79.00", "early_bird"),   # release day = day 0
    ("2025-10-31", "79.00", "early_bird"),   # day 30: still early-bird
    ("2025-11-01", "99.00", "standard"),     # day 31: standard
])
def test_early_bird_window_is_day_0_to_day_30(versions, make_license, when, price, rule):
    lic = make_license(purchased_version="1.0.0")
    for hour in (0, 23):  # the whole UTC day counts the same
        q = upgrades.quote(versions, lic, "2.0.0", at(when, hour))
        assert (q.price, q.pricing_rule) == (Decimal(price), rule)
    assert q.early_bird_until == date(2025, 10, 31)


def test_early_bird_counts_from_the_major_release_not_a_later_minor(versions, make_license):
    lic = make_license(purchased_version="1.5.0")
    # 2.5.0 came out 2025-10-29, but the 2.x upgrade launched with 2.0.0 on 2025-10-01.
    q = upgrades.quote(versions, lic, "2.5.0", at("2025-11-05"))
    assert (q.price, q.pricing_rule, q.days_since_release) == (Decimal("99.00"), "standard", 35)
    assert (q.from_version, q.eligible_until_after) == ("1.5.0", "3.0.0")


def test_loyalty_after_a_completed_upgrade_and_the_lowest_price_wins(versions, make_license):
    lic = make_license(purchased_version="1.0.0")
    first = upgrades.create_upgrade(versions, lic, "2.0.0", at=at("2025-10-20"))
    assert (first.price, first.pricing_rule, first.status) == (Decimal("79.00"), "early_bird", "pending")
    q = upgrades.quote(versions, lic, "2.0.0", at("2025-10-21"))  # still pending: nothing changed yet
    assert q.loyalty is False
    upgrades.complete_upgrade(versions, first, "pi_upgrade_001", at=at("2025-10-20"))
    assert lic.eligible_until_version == "3.0.0"
    # 3.0.0 was released 2025-11-03: early-bird ($79) and loyalty ($69) both apply; $69 wins.
    q = upgrades.quote(versions, lic, "3.0.0", at("2025-11-04"))
    assert (q.early_bird, q.loyalty, q.price, q.pricing_rule) == (True, True, Decimal("69.00"), "loyalty")
    assert q.from_version == "2.0.0"


def test_completing_moves_eligibility_and_refunding_puts_it_back(versions, make_license):
    lic = make_license(purchased_version="1.0.0")
    up = upgrades.create_upgrade(versions, lic, "2.0.0", at=at("2025-11-09"))
    assert lic.eligible_until_version == "2.0.0"
    upgrades.complete_upgrade(versions, up, "pi_1", at=at("2025-11-09"))
    assert (up.status, up.previous_eligible_until, lic.eligible_until_version) == ("completed", "2.0.0", "3.0.0")
    with pytest.raises(DomainError):
        upgrades.complete_upgrade(versions, up, "pi_1")
    upgrades.refund_upgrade(versions, up, "re_1")
    assert (up.status, lic.eligible_until_version) == ("refunded", "2.0.0")


def test_a_failed_upgrade_changes_nothing_and_frees_the_pending_slot(versions, make_license):
    lic = make_license(purchased_version="1.0.0")
    up = upgrades.create_upgrade(versions, lic, "2.0.0", at=at("2025-11-09"))
    with pytest.raises(DomainError) as err:
        upgrades.create_upgrade(versions, lic, "2.5.0", at=at("2025-11-09"))
    assert err.value.code == "upgrade_pending"
    upgrades.fail_upgrade(versions, up, "card declined")
    assert (up.status, lic.eligible_until_version) == ("failed", "2.0.0")
    upgrades.create_upgrade(versions, lic, "2.5.0", at=at("2025-11-09"))


@pytest.mark.parametrize("to,code", [
    ("1.5.0", "upgrade_not_newer"),       # covered already
    ("1.0.0", "upgrade_not_newer"),       # the same version it was bought for
    ("2.0.0-beta.1", "upgrade_not_newer"),  # SemVer: below 2.0.0, so covered
    ("3.0.0", "upgrade_skips_major"),
    ("2.7.0", "unknown_version"),
    ("two", "invalid_version"),
])
def test_bad_upgrade_targets_are_refused_and_nothing_is_written(versions, make_license, to, code):
    lic = make_license(purchased_version="1.0.0")
    before = upgrade_count(versions)
    with pytest.raises(DomainError) as err:
        upgrades.create_upgrade(versions, lic, to, at=at("2025-11-09"))
    assert (err.value.code, err.value.field) == (code, "to")
    assert upgrade_count(versions) == before and lic.eligible_until_version == "2.0.0"


def test_older_than_purchase_says_so(versions, make_license):
    lic = make_license(purchased_version="1.5.0")
    with pytest.raises(DomainError) as err:
        upgrades.quote(versions, lic, "1.0.0", at("2025-11-09"))
    assert "older than 1.5.0" in err.value.message


def test_unreleased_versions_and_blocked_licenses_cannot_be_bought(versions, make_license, staff):
    lic = make_license(purchased_version="1.0.0")
    with pytest.raises(DomainError) as err:
        upgrades.quote(versions, lic, "2.0.0", at("2025-09-30"))
    assert err.value.code == "version_not_released"
    service.revoke(versions, lic, actor=staff, reason="fraudulent purchase")
    with pytest.raises(DomainError) as err:
        upgrades.quote(versions, lic, "2.0.0", at("2025-11-09"))
    assert err.value.code == "license_revoked"


def test_versions_editor_rules(versions, staff):
    with pytest.raises(DomainError) as err:
        upgrades.create_version(versions, "2.0.0", date(2025, 1, 1), actor=staff)
    assert err.value.code == "duplicate_version"
    with pytest.raises(DomainError) as err:
        upgrades.create_version(versions, "2.1", date(2025, 1, 1), actor=staff)
    assert err.value.code == "invalid_version"
    row = upgrades.create_version(versions, "3.1.0-beta.1", date(2025, 12, 1), "beta", actor=staff)
    assert [v.version for v in upgrades.list_versions(versions)][:2] == ["3.1.0-beta.1", "3.0.0"]
    upgrades.update_version(versions, row, date(2025, 12, 5), "beta", actor=staff)
    assert row.release_date == date(2025, 12, 5)
