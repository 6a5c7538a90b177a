"""Seats: idempotent activation, the max_activations limit (also under a parallel race),
replacement, deactivation, heartbeats and the per-license change rate limit."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.errors import DomainError
from app.licensing import activations, service
from app.licensing.activations import RateLimited
from app.licensing.models import Activation, ActivationEvent, License
from tests.licensing.conftest import fp

WINDOWS = {"device_name": "John's Desktop", "os_type": "Windows", "os_version": "10.0.19045",
           "cpu_info": "Intel Core i7-12700K @ 3.60GHz"}


def count_rows(session, model, **where):
    stmt = select(func.count()).select_from(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    return session.scalar(stmt)


def test_activate_records_the_device_and_the_first_activation_time(session, make_license, frozen_clock):
    lic = make_license()
    result = activations.activate(session, lic, fp("win").upper(), WINDOWS)
    act = result.activation
    assert result.created and act.status == "active" and act.fingerprint == fp("win")
    assert (act.device_name, act.os_type, act.cpu_info) == ("John's Desktop", "Windows", WINDOWS["cpu_info"])
    assert act.activated_at == act.last_seen_at == frozen_clock.now() == lic.activated_at


def test_reactivating_an_active_fingerprint_returns_the_same_row(session, make_license):
    lic = make_license()
    first = activations.activate(session, lic, fp("win"), WINDOWS)
    again = activations.activate(session, lic, fp("win"), WINDOWS)
    assert not again.created and again.activation.id == first.activation.id
    assert count_rows(session, Activation, license_id=lic.id) == 1
    assert count_rows(session, ActivationEvent, license_id=lic.id) == 1  # the replay is not a change


def test_seats_are_limited_and_a_freed_seat_can_be_reused(session, make_license):
    lic = make_license(max_activations=2)
    a, b = fp("a"), fp("b")
    activations.activate(session, lic, a)
    activations.activate(session, lic, b)
    with pytest.raises(DomainError) as err:
        activations.activate(session, lic, fp("c"))
    assert err.value.code == "too_many_activations" and "2 device seats" in err.value.message
    activations.deactivate(session, lic, fingerprint=a)
    activations.activate(session, lic, fp("c"))
    assert service.active_count(session, lic.id) == 2
    # a deactivated device coming back reuses its row (unique per license and fingerprint)
    activations.deactivate(session, lic, fingerprint=b)
    back = activations.activate(session, lic, b)
    assert back.created and count_rows(session, Activation, license_id=lic.id, fingerprint=b) == 1


@pytest.mark.parametrize("bad", ["abc", "g" * 64, fp()[:63], fp() + "0", "", None, 12])
def test_fingerprint_must_be_64_hex(session, make_license, bad):
    lic = make_license()
    with pytest.raises(DomainError) as err:
        activations.activate(session, lic, bad)
    assert (err.value.code, err.value.field) == ("invalid_fingerprint", "fingerprint")
    assert count_rows(session, Activation, license_id=lic.id) == 0


def test_device_fields_are_bounded(session, make_license):
    lic = make_license()
    with pytest.raises(DomainError) as err:
        activations.activate(session, lic, fp(), {"device_name": "x" * 121})
    assert (err.value.code, err.value.field) == ("invalid_device_field", "device_name")


@pytest.mark.parametrize("status,code", [("revoked", "license_revoked"), ("suspended", "license_suspended")])
def test_activating_a_blocked_license_is_refused_and_changes_nothing(session, make_license, staff, status, code):
    lic = make_license()
    (service.revoke if status == "revoked" else service.suspend)(session, lic, actor=staff, reason="abuse report")
    with pytest.raises(DomainError) as err:
        activations.activate(session, lic, fp())
    assert (err.value.code, err.value.status) == (code, 403)
    assert count_rows(session, Activation, license_id=lic.id) == 0


def test_replace_moves_the_seat_atomically(session, make_license, staff):
    lic = make_license(max_activations=1)
    old = activations.activate(session, lic, fp("old"), WINDOWS).activation
    with pytest.raises(DomainError):
        activations.activate(session, lic, fp("new"))
    replaced, new = activations.replace(session, lic, old.id, fp("new"), {"device_name": "New laptop"},
                                        actor=staff, reason="customer bought a new laptop")
    assert (replaced.status, replaced.replaced_by_id, new.status) == ("replaced", new.id, "active")
    assert service.active_count(session, lic.id) == 1
    with pytest.raises(DomainError) as err:
        activations.replace(session, lic, replaced.id, fp("third"), actor=staff, reason="again please")
    assert err.value.code == "not_activated"


def test_staff_deactivation_is_audited(session, make_license, staff):
    from app.core.audit import AuditEntry

    lic = make_license()
    act = activations.activate(session, lic, fp("a"), WINDOWS).activation
    activations.deactivate(session, lic, activation_id=act.id, source="staff", actor=staff, reason="lost laptop")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "licenses.device_deactivated"))
    assert entry.target_id == str(lic.id) and entry.reason == "lost laptop"
    assert (entry.before["status"], entry.after["status"]) == ("active", "deactivated")


def test_heartbeat_updates_last_seen(session, make_license, frozen_clock, staff):
    lic = make_license()
    act = activations.activate(session, lic, fp("a")).activation
    frozen_clock.advance(timedelta(hours=5))
    activations.heartbeat(session, lic, fp("a"))
    assert act.last_seen_at == frozen_clock.now()
    with pytest.raises(DomainError) as err:
        activations.heartbeat(session, lic, fp("unknown"))
    assert (err.value.code, err.value.status) == ("not_activated", 404)
    service.revoke(session, lic, actor=staff, reason="fraudulent purchase")
    with pytest.raises(DomainError) as err:
        activations.heartbeat(session, lic, fp("a"))
    assert err.value.code == "license_revoked"


def test_client_changes_are_rate_limited_per_license(session, make_license, frozen_clock, staff):
    lic = make_license(max_activations=3)
    for i in range(5):  # 5 activate/deactivate cycles = 10 changes
        activations.activate(session, lic, fp("cycle"))
        frozen_clock.advance(timedelta(minutes=10))
        activations.deactivate(session, lic, fingerprint=fp("cycle"))
    with pytest.raises(RateLimited) as err:
        activations.activate(session, lic, fp("cycle"))
    assert err.value.status == 429 and err.value.code == "activation_rate_limited"
    # the first change was 50 minutes ago: it leaves the 24 h window in 23 h 10 min
    assert err.value.retry_after == int(timedelta(hours=23, minutes=10).total_seconds())
    assert service.active_count(session, lic.id) == 0
    # staff are not limited (and other licenses are unaffected)
    activations.activate(session, lic, fp("staff"), source="staff", actor=staff)
    activations.activate(session, make_license(), fp("cycle"))
    frozen_clock.advance(timedelta(hours=23, minutes=10))
    activations.activate(session, lic, fp("cycle"))


def test_rate_limit_is_configurable(app, session, make_license):
    original = app.config["LICENSE_ACTIVATION_CHANGE_LIMIT"]
    assert original == 10
    app.config["LICENSE_ACTIVATION_CHANGE_LIMIT"] = 2
    try:
        lic = make_license()
        activations.activate(session, lic, fp("a"))
        activations.activate(session, lic, fp("b"))
        with pytest.raises(RateLimited):
            activations.activate(session, lic, fp("c"))
    finally:
        app.config["LICENSE_ACTIVATION_CHANGE_LIMIT"] = original


def _parallel(app, license_id, fingerprints):
    """Activate each fingerprint from its own thread, app context and database session at once."""
    from app.extensions import db

    barrier = threading.Barrier(len(fingerprints))
    outcomes = []

    def worker(fingerprint):
        with app.app_context():
            lic = db.session.get(License, license_id)
            barrier.wait()
            try:
                result = activations.activate(db.session, lic, fingerprint)
                db.session.commit()
                outcomes.append("created" if result.created else "existing")
            except DomainError as error:
                db.session.rollback()
                outcomes.append(error.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(f,)) for f in fingerprints]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def _committed_license(app, make_user, seats):
    from app.extensions import db

    with app.test_request_context():
        lic = service.create_license(db.session, owner=make_user(), actor=None, purchase_price="299.99",
                                     purchased_version="1.0.0", max_activations=seats)
        db.session.commit()
        return lic.id


@pytest.mark.postgres
def test_ten_parallel_activations_on_three_seats_exactly_three_win(app, real_db, make_user):
    license_id = _committed_license(app, make_user, seats=3)
    outcomes = _parallel(app, license_id, [fp(f"machine-{i}") for i in range(10)])
    assert sorted(outcomes) == ["created"] * 3 + ["too_many_activations"] * 7
    with app.app_context():
        assert service.active_count(real_db.session, license_id) == 3


@pytest.mark.postgres
def test_parallel_activations_of_one_fingerprint_make_one_row(app, real_db, make_user):
    license_id = _committed_license(app, make_user, seats=3)
    outcomes = _parallel(app, license_id, [fp("same")] * 8)
    assert sorted(outcomes) == ["created"] + ["existing"] * 7
    with app.app_context():
        assert count_rows(real_db.session, Activation, license_id=license_id) == 1
