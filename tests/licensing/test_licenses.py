"""License keys, issuing, the status transition table and the audited staff actions."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core import clock
from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.core.pagination import keyset_page
from app.licensing import activations, service
from app.licensing.models import License
from tests.licensing.conftest import fp

KEY = re.compile(r"^PERM(-[ABCDEFGHJKMNPQRSTVWXYZ23456789]{4}){4}$")


def audits(session, lic, action=None):
    stmt = select(AuditEntry).where(AuditEntry.target_type == "licenses", AuditEntry.target_id == str(lic.id))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return session.scalars(stmt.order_by(AuditEntry.id)).all()


def test_generated_keys_use_the_unambiguous_alphabet_and_differ():
    keys = {service.generate_key() for _ in range(500)}
    assert len(keys) == 500
    assert all(KEY.match(k) for k in keys)
    assert not any(c in "".join(keys)[5:] for c in "01ILOU")


def test_issue_a_license_with_defaults_and_an_audit_row(session, make_license, staff, customer):
    owner = customer(test=True)
    lic = make_license(owner, price="299.99")
    assert KEY.match(lic.license_key)
    assert (lic.status, lic.purchased_version, lic.eligible_until_version) == ("active", "1.0.0", "2.0.0")
    assert str(lic.purchase_price) == "299.99" and lic.is_test is True
    (entry,) = audits(session, lic, "licenses.created")
    assert entry.actor_id == staff.id and entry.after["owner"] == owner.email


@pytest.mark.parametrize("field,kwargs,code", [
    ("purchase_price", {"price": "12.345"}, "invalid_amount"),
    ("purchase_price", {"price": "-1"}, "invalid_amount"),
    ("purchased_version", {"purchased_version": "1.0"}, "invalid_version"),
    ("eligible_until_version", {"eligible_until_version": "1.0.0"}, "invalid_eligibility"),
    ("max_activations", {"max_activations": 0}, "invalid_max_activations"),
    ("status", {"status": "revoked"}, "invalid_status"),
])
def test_bad_issue_input_is_refused_and_nothing_is_written(session, make_license, field, kwargs, code):
    before = session.scalar(select(License.id).order_by(License.id.desc()).limit(1))
    with pytest.raises(DomainError) as err:
        make_license(**kwargs)
    assert (err.value.code, err.value.field) == (code, field)
    assert session.scalar(select(License.id).order_by(License.id.desc()).limit(1)) == before


def test_transition_table_suspend_reinstate_revoke_and_revoked_is_final(session, make_license, staff):
    lic = make_license()
    service.suspend(session, lic, actor=staff, reason="chargeback under review")
    assert lic.status == "suspended"
    service.reinstate(session, lic, actor=staff, reason="chargeback won")
    assert lic.status == "active"
    service.revoke(session, lic, actor=staff, reason="key shared publicly")
    assert lic.status == "revoked" and lic.status_reason == "key shared publicly"
    for action in (service.suspend, service.reinstate, service.revoke):
        with pytest.raises(DomainError) as err:
            action(session, lic, actor=staff, reason="trying again")
        assert err.value.code == "invalid_transition"
    entries = audits(session, lic)
    assert [e.action for e in entries] == ["licenses.created", "licenses.suspended", "licenses.reinstated",
                                           "licenses.revoked"]
    revoked = entries[-1]
    assert revoked.before["status"] == "active" and revoked.after["status"] == "revoked"
    assert revoked.reason == "key shared publicly"


def test_reason_is_required_for_staff_actions(session, make_license, staff):
    lic = make_license()
    with pytest.raises(DomainError) as err:
        service.revoke(session, lic, actor=staff, reason="  ")
    assert (err.value.code, err.value.field) == ("reason_required", "reason")
    assert lic.status == "active"


def test_pending_license_waits_for_billing_then_activates(session, make_license, staff):
    lic = make_license(status="pending")
    with pytest.raises(DomainError) as err:
        activations.activate(session, lic, fp())
    assert err.value.code == "license_pending" and err.value.status == 403
    service.complete_purchase(session, lic, "pi_123")
    assert lic.status == "active" and lic.payment_reference == "pi_123"
    assert audits(session, lic, "licenses.purchase_completed")[0].actor_label == "system"
    other = make_license(status="pending")
    service.mark_active(session, other, actor=staff, reason="paid by bank transfer")
    assert other.status == "active"


def test_change_max_activations_never_below_active_devices(session, make_license, staff):
    lic = make_license(max_activations=3)
    for _ in range(2):
        activations.activate(session, lic, fp())
    with pytest.raises(DomainError) as err:
        service.change_max_activations(session, lic, 1, actor=staff, reason="downgrade to one seat")
    assert (err.value.code, err.value.field) == ("below_active_count", "max_activations")
    assert lic.max_activations == 3
    service.change_max_activations(session, lic, 2, actor=staff, reason="downgrade to two seats")
    (entry,) = audits(session, lic, "licenses.max_activations_changed")
    assert (entry.before["max_activations"], entry.after["max_activations"]) == (3, 2)


def test_extend_eligibility_only_upwards(session, make_license, staff):
    lic = make_license()
    with pytest.raises(DomainError) as err:
        service.extend_eligibility(session, lic, "1.5.0", actor=staff, reason="goodwill gesture")
    assert err.value.code == "not_an_extension"
    with pytest.raises(DomainError) as err:
        service.extend_eligibility(session, lic, "three", actor=staff, reason="goodwill gesture")
    assert err.value.code == "invalid_version"
    service.extend_eligibility(session, lic, "2.5.0", actor=staff, reason="goodwill gesture")
    assert lic.eligible_until_version == "2.5.0"
    (entry,) = audits(session, lic, "licenses.eligibility_extended")
    assert (entry.before["eligible_until_version"], entry.after["eligible_until_version"]) == ("2.0.0", "2.5.0")


def test_expiry_job_moves_due_licenses_to_expired(session, make_license, frozen_clock):
    due = make_license(expires_at=clock.now() + timedelta(days=1))
    later = make_license(expires_at=clock.now() + timedelta(days=10))
    frozen_clock.advance(timedelta(days=2))
    assert service.expire_due(session) == 1
    assert (due.status, later.status) == ("expired", "active")
    with pytest.raises(DomainError) as err:
        service.reinstate(session, due, actor=None, reason="please come back")
    assert err.value.code == "invalid_transition"


def test_byok_license_for_a_user(session, make_license, customer, staff):
    owner = customer()
    assert service.byok_license_for(session, owner) is None
    lic = make_license(owner)
    assert service.byok_license_for(session, owner) == lic
    device = fp("device")
    assert service.byok_license_for(session, owner, fingerprint=device) is None
    activations.activate(session, lic, device)
    assert service.byok_license_for(session, owner, fingerprint=device) == lic
    service.suspend(session, lic, actor=staff, reason="fraud check")
    assert service.byok_license_for(session, owner) is None


def test_list_filters_status_version_owner_and_test_data(session, make_license, customer, staff):
    prod_owner, test_owner = customer(email="buyer@corp.example"), customer(test=True)
    v1 = make_license(prod_owner, purchased_version="1.0.0")
    v2 = make_license(prod_owner, purchased_version="2.0.0")
    beta = make_license(test_owner, purchased_version="1.5.0")
    service.suspend(session, v2, actor=staff, reason="fraud check")

    def ids(**kw):
        page = keyset_page(session, service.list_query(service.LicenseFilters(**kw)), License, 50, None)
        return {lic.id for lic in page.items}

    assert ids(status="suspended") == {v2.id}
    assert ids(version="1.9.9", data="all") == {v1.id, beta.id}
    assert ids(version="2.0.0-beta.1", data="all") == {v1.id, beta.id}  # SemVer: the beta is below 2.0.0
    assert ids(version="2.0.0", data="all") == {v2.id}
    assert ids(owner="corp.example") == {v1.id, v2.id}
    assert ids(owner=v1.license_key.lower()) == {v1.id}
    assert beta.id not in ids() and ids(data="test") >= {beta.id}
    with pytest.raises(DomainError):
        ids(version="2.x")


def test_expire_licenses_job_runs_through_the_job_runner(session, make_license, frozen_clock):
    from app.core.jobs import PERIODIC, JobRecord
    from app.jobs_registry import load

    load()
    lic = make_license(expires_at=clock.now() + timedelta(hours=1))
    frozen_clock.advance(timedelta(hours=2))
    from app.core.jobs import run_periodic

    record = run_periodic("expire-licenses")
    assert "expire-licenses" in PERIODIC and record.status == "finished" and record.result == {"expired": 1}
    session.expire_all()
    assert service.get_license(session, lic.id).status == "expired"
    assert isinstance(record, JobRecord)
