"""Each fraud detector fires at exactly its threshold and not one below; test traffic stays apart."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.coupons import redemption
from app.coupons.models import FraudDetection
from tests.coupons.conftest import NOW

IRREGULAR = [50, 37, 21, 3]  # minutes before NOW: uneven gaps, so bot_pattern stays quiet


@pytest.fixture
def unlimited(make_coupon):
    return make_coupon(max_uses=None, max_uses_per_user=None)


def redeem_at(session, coupon, attempt, user, minutes_ago, **values):
    return redemption.redeem(session, coupon, attempt(user, at=NOW - timedelta(minutes=minutes_ago), **values))


def detections(session, user, kind=None):
    stmt = select(FraudDetection).where(FraudDetection.user_id == user.id)
    if kind:
        stmt = stmt.where(FraudDetection.detection_type == kind)
    return list(session.scalars(stmt))


@pytest.mark.parametrize("prior, blocked", [(4, True), (3, False)])
def test_velocity_by_user_at_five_attempts_in_an_hour(session, make_user, unlimited, attempt, prior, blocked):
    user = make_user()
    for minutes in IRREGULAR[-prior:]:
        assert redeem_at(session, unlimited, attempt, user, minutes).status == "success"
    row = redeem_at(session, unlimited, attempt, user, 0)
    assert (row.failure_code == "fraud_blocked") is blocked
    found = detections(session, user, "velocity_abuse")
    if blocked:
        assert row.failure_reason == "Velocity abuse detected - 5 attempts in 1h"
        assert [(d.severity, d.blocked, d.is_flagged, d.details["velocity"]) for d in found] == [("high", True, True, 5)]
    else:
        assert row.status == "success" and found == []


def test_velocity_window_is_one_hour(session, make_user, unlimited, attempt):
    user = make_user()
    for minutes in (61, 37, 21, 3):
        redeem_at(session, unlimited, attempt, user, minutes)
    assert redeem_at(session, unlimited, attempt, user, 0).status == "success"


@pytest.mark.parametrize("prior, blocked", [(9, True), (8, False)])
def test_velocity_by_ip_counts_distinct_customers(session, make_user, unlimited, attempt, prior, blocked):
    """Ten customers from one IP within the hour is abuse; nine is an office (issue 18)."""
    for n in range(prior):
        redeem_at(session, unlimited, attempt, make_user(), 55 - n * 5, ip_address="198.51.100.123")
    last = make_user()
    row = redeem_at(session, unlimited, attempt, last, 0, ip_address="198.51.100.123")
    assert (row.failure_code == "fraud_blocked") is blocked
    if blocked:
        found = detections(session, last)[0]
        assert found.details["by"] == "ip" and found.details["distinct_customers"] == 10


def test_five_customers_behind_one_office_ip_and_repeat_attempts_count_once(session, make_user, unlimited, attempt):
    office = [make_user() for _ in range(5)]
    for n, user in enumerate(office):
        assert redeem_at(session, unlimited, attempt, user, 50 - n * 9, ip_address="203.0.113.9").status == "success"
    again = redeem_at(session, unlimited, attempt, office[0], 1, ip_address="203.0.113.9")
    assert again.status == "success" and detections(session, office[0], "velocity_abuse") == []


def test_the_ip_threshold_is_configurable(app, session, make_user, unlimited, attempt, monkeypatch):
    monkeypatch.setitem(app.config, "COUPON_FRAUD", {"velocity_abuse": {"max_customers_per_ip": 3}})
    for n in range(2):
        redeem_at(session, unlimited, attempt, make_user(), 30 - n * 7, ip_address="192.0.2.77")
    assert redeem_at(session, unlimited, attempt, make_user(), 0, ip_address="192.0.2.77").failure_code == "fraud_blocked"


@pytest.mark.parametrize("ips, flagged", [(["203.0.113.1", "198.51.100.1"], True), (["203.0.113.1"], False)])
def test_ip_switching_at_three_addresses_in_fifteen_minutes(session, make_user, unlimited, attempt, ips, flagged):
    user = make_user()
    for minutes, ip in zip((14, 6), ips):
        redeem_at(session, unlimited, attempt, user, minutes, ip_address=ip)
    row = redeem_at(session, unlimited, attempt, user, 0, ip_address="192.0.2.1")
    assert row.status == "success"  # medium: flags for review, does not block
    found = detections(session, user, "ip_switching")
    if flagged:
        assert [(d.severity, d.blocked, d.redemption_id) for d in found] == [("medium", False, row.id)]
        assert found[0].details["ip_addresses"] == ["203.0.113.1", "198.51.100.1", "192.0.2.1"]
    else:
        assert found == []


def test_ip_switching_ignores_addresses_older_than_the_window(session, make_user, unlimited, attempt):
    user = make_user()
    redeem_at(session, unlimited, attempt, user, 16, ip_address="203.0.113.1")
    redeem_at(session, unlimited, attempt, user, 6, ip_address="198.51.100.1")
    redeem_at(session, unlimited, attempt, user, 0, ip_address="192.0.2.1")
    assert detections(session, user, "ip_switching") == []


@pytest.mark.parametrize("gaps, blocked", [
    ((30, 30, 30), True),       # four attempts, metronome-regular
    ((30, 30), False),          # three attempts: one below the minimum
    ((30, 30, 31), True),       # jitter exactly 1.0 s
    ((30, 30, 31.5), False),    # jitter 1.5 s: human enough
])
def test_bot_pattern_regular_intervals(session, make_user, unlimited, attempt, gaps, blocked):
    user = make_user()
    at = NOW - timedelta(seconds=sum(gaps))
    for gap in gaps:
        redemption.redeem(session, unlimited, attempt(user, at=at))
        at += timedelta(seconds=gap)
    row = redemption.redeem(session, unlimited, attempt(user, at=at))
    assert (row.failure_code == "fraud_blocked") is blocked
    found = detections(session, user, "bot_pattern")
    assert [(d.severity, d.blocked) for d in found] == ([("critical", True)] if blocked else [])


@pytest.mark.parametrize("agent, blocked", [
    ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0", True), ("Mozilla/5.0 (compatible; Googlebot/2.1)", True),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0", False), ("RephloDesktop/2.1 (Windows)", False),
    # HTTP libraries are how apps and servers call an API, not a sign of a bot (issue 18)
    ("python-requests/2.31.0", False), ("curl/8.4.0", False), ("okhttp/4.12.0", False), ("Go-http-client/2.0", False)])
def test_bot_pattern_automation_user_agents(session, make_user, unlimited, attempt, agent, blocked):
    user = make_user()
    row = redeem_at(session, unlimited, attempt, user, 0, user_agent=agent)
    assert (row.failure_code == "fraud_blocked") is blocked


@pytest.mark.parametrize("open_invoice", [True, False])
@pytest.mark.parametrize("first_stackable, second_stackable, blocked", [
    (False, True, True), (True, False, True), (False, False, True), (True, True, False)])
def test_stacking_abuse_on_one_invoice(session, make_user, make_coupon, make_subscription, attempt, first_stackable,
                                       second_stackable, blocked, open_invoice):
    """The same invoice: the open uncharged one (discounts go on it at once), or the next one."""
    from app.coupons.validation import build_attempt

    user = make_user()
    sub = make_subscription(user=user, invoice=open_invoice)
    first = make_coupon(is_stackable=first_stackable)
    second = make_coupon(is_stackable=second_stackable, discount_type="fixed_amount",
                         coupon_type="fixed_amount_discount", discount_value="5.00")
    raw = {"amount": "99.99", "subscription_id": sub.id}
    one = build_attempt(session, first, user, raw, is_test=False, ip_address="203.0.113.45")
    one.at = NOW - timedelta(minutes=10)
    assert redemption.redeem(session, first, one).status == ("success" if open_invoice else "pending")
    two = build_attempt(session, second, user, raw, is_test=False, ip_address="203.0.113.45")
    two.at = NOW
    row = redemption.redeem(session, second, two)
    assert (row.failure_code == "fraud_blocked") is blocked
    found = detections(session, user, "stacking_abuse")
    assert [(d.severity, d.blocked) for d in found] == ([("high", True)] if blocked else [])


def test_stacking_is_per_invoice(session, make_user, make_coupon, make_subscription, attempt):
    user = make_user()
    first, second, third = make_coupon(), make_coupon(), make_coupon()
    one, other = make_subscription(user=user), make_subscription()
    redeem_at(session, first, attempt, user, 10, subscription_id=one.id)
    assert redeem_at(session, second, attempt, user, 5, subscription_id=other.id).status == "pending"
    assert redeem_at(session, third, attempt, user, 0).status == "success"  # no invoice: a one-off purchase


def test_device_fingerprint_unknown_is_flagged_not_blocked(session, make_user, make_coupon, attempt, monkeypatch):
    user = make_user()
    coupon = make_coupon(requires_licensed_device=True, max_uses_per_user=None)
    row = redeem_at(session, coupon, attempt, user, 30, device_fingerprint="a" * 64)
    assert row.status == "success"
    found = detections(session, user, "device_fingerprint_mismatch")
    assert [(d.severity, d.blocked, d.details["fingerprint"]) for d in found] == [("medium", False, "a" * 64)]
    # A fingerprint the licensing domain knows for this user raises nothing.
    from app.coupons import sources

    monkeypatch.setattr(sources, "licensed_fingerprints", lambda s, uid: {"b" * 64} if uid == user.id else set())
    redeem_at(session, coupon, attempt, make_user(), 0, device_fingerprint="b" * 64)
    redeem_at(session, coupon, attempt, user, 0, device_fingerprint="b" * 64, ip_address="203.0.113.45")
    assert len(detections(session, user, "device_fingerprint_mismatch")) == 1


def test_no_fingerprint_check_when_the_coupon_does_not_need_a_device(session, make_user, unlimited, attempt):
    user = make_user()
    redeem_at(session, unlimited, attempt, user, 0, device_fingerprint="c" * 64)
    assert detections(session, user) == []


def test_test_mode_attempts_never_feed_production_detectors(session, make_user, unlimited, attempt):
    user = make_user()
    for minutes in IRREGULAR:
        redeem_at(session, unlimited, attempt, user, minutes, is_test=True)
    production = redeem_at(session, unlimited, attempt, user, 0)
    assert production.status == "success"
    sandbox = redeem_at(session, unlimited, attempt, user, 0, is_test=True)
    assert sandbox.failure_code == "fraud_blocked"
    found = detections(session, user)
    assert [(d.detection_type, d.is_test) for d in found] == [("velocity_abuse", True)]


def test_a_burst_keeps_one_open_detection(session, make_user, unlimited, attempt):
    user = make_user()
    for minutes in (50, 37, 21, 3, 2, 1, 0):
        redeem_at(session, unlimited, attempt, user, minutes)
    found = detections(session, user, "velocity_abuse")
    assert len(found) == 1 and found[0].details["repeat_count"] == 2


def test_thresholds_are_configurable(app, session, make_user, unlimited, attempt, monkeypatch):
    monkeypatch.setitem(app.config, "COUPON_FRAUD", {"velocity_abuse": {"max_attempts": 3}})
    user = make_user()
    redeem_at(session, unlimited, attempt, user, 40)
    redeem_at(session, unlimited, attempt, user, 13)
    assert redeem_at(session, unlimited, attempt, user, 0).failure_code == "fraud_blocked"
    monkeypatch.setitem(app.config, "COUPON_FRAUD", {"velocity_abuse": {"enabled": False}})
    assert redeem_at(session, unlimited, attempt, make_user(), 0).status == "success"
