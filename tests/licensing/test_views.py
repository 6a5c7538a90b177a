"""Staff screens: permissions, filters and paging, the license page and its HTMX actions,
revoke behind sudo, device replacement, the versions editor and the stale-devices view."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.licensing import activations, service
from tests.licensing.conftest import fp

HX = {"HX-Request": "true"}


@pytest.fixture
def seeded(session, make_license, customer, frozen_clock):
    owner = customer(email="owner@corp.example")
    lic = make_license(owner, max_activations=3)
    desk = activations.activate(session, lic, fp("desk"), {"device_name": "Desk PC", "os_type": "Windows"}).activation
    session.commit()
    return lic, desk


def test_list_needs_licenses_view(login_as, seeded):
    lic, _ = seeded
    assert login_as().get("/admin/licenses").status_code == 403
    page = login_as("analyst").get("/admin/licenses")
    assert page.status_code == 200 and lic.license_key in page.text and "owner@corp.example" in page.text
    assert "Issue a license" not in page.text


def test_list_filters_and_htmx_fragment(login_as, seeded, make_license, customer):
    lic, _ = seeded
    other = make_license(customer(), purchased_version="2.0.0")
    client = login_as("support")
    assert other.license_key not in client.get("/admin/licenses?version=1.2.0").text
    r = client.get("/admin/licenses?version=2.0.0", headers=HX)
    assert other.license_key in r.text and lic.license_key not in r.text and "<html" not in r.text
    r = client.get("/admin/licenses?version=banana")
    assert r.status_code == 422 and "not a semantic version" in r.text


def test_keyset_load_more(login_as, make_license, customer, frozen_clock):
    owner = customer(email="many@corp.example")
    keys = []
    for _ in range(3):
        keys.append(make_license(owner).license_key)
        frozen_clock.advance(timedelta(seconds=1))
    client = login_as("support")
    first = client.get("/admin/licenses?owner=many@corp&limit=2")
    assert keys[2] in first.text and keys[1] in first.text and keys[0] not in first.text
    more = first.text.split('hx-get="')[-1].split('"')[0].replace("&amp;", "&")
    second = client.get(more, headers=HX)
    assert keys[0] in second.text and keys[2] not in second.text and "Load more" not in second.text


def test_license_page_for_support_is_read_only(login_as, seeded):
    lic, desk = seeded
    page = login_as("support").get(f"/admin/licenses/{lic.id}")
    assert page.status_code == 200
    assert "Desk PC" in page.text and "1 of 3 active" in page.text
    assert "revoke-link" not in page.text and "Suspend" not in page.text and "Deactivate" not in page.text


def test_suspend_and_reinstate_with_htmx_write_audit_rows(session, login_as, seeded):
    lic, _ = seeded
    client = login_as("admin")
    r = client.post(f"/admin/licenses/{lic.id}/suspend", data={"suspend-reason": "chargeback opened"}, headers=HX)
    assert r.status_code == 200 and 'data-status="suspended"' in r.text and "<html" not in r.text
    r = client.post(f"/admin/licenses/{lic.id}/reinstate", data={"reinstate-reason": "x"}, headers=HX)
    assert r.status_code == 422 and "5 to 1,000 characters" in r.text
    r = client.post(f"/admin/licenses/{lic.id}/reinstate", data={"reinstate-reason": "chargeback won"})
    assert r.status_code == 302
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(lic.id))).all()
    assert "licenses.suspended" in actions and "licenses.reinstated" in actions


def test_ops_cannot_suspend(login_as, seeded):
    lic, _ = seeded
    r = login_as("ops").post(f"/admin/licenses/{lic.id}/suspend", data={"suspend-reason": "not allowed"})
    assert r.status_code == 403 and "licenses.suspend" in r.text


def test_revoke_needs_the_permission_and_sudo(session, login_as, sudo, seeded, customer):
    lic, _ = seeded
    r = login_as("ops").get(f"/admin/licenses/{lic.id}/revoke")
    assert r.status_code == 403
    admin = login_as("admin")
    r = admin.get(f"/admin/licenses/{lic.id}/revoke")
    assert r.status_code == 200 and "confirm-sudo" in r.text and "Revoke license" not in r.text
    r = admin.post(f"/admin/licenses/{lic.id}/revoke", data={"reason": "fraudulent purchase"})
    assert r.status_code == 302 and "/auth/sudo" in r.headers["Location"]
    assert service.get_license(session, lic.id).status == "active"
    sudo(admin)
    assert "Revoke license" in admin.get(f"/admin/licenses/{lic.id}/revoke").text
    r = admin.post(f"/admin/licenses/{lic.id}/revoke", data={"reason": ""})
    assert r.status_code == 422
    r = admin.post(f"/admin/licenses/{lic.id}/revoke", data={"reason": "fraudulent purchase"})
    assert r.status_code == 302
    session.expire_all()
    assert service.get_license(session, lic.id).status == "revoked"
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "licenses.revoked"))
    assert entry.actor_id == admin.user.id and entry.reason == "fraudulent purchase"
    page = admin.get(f"/admin/licenses/{lic.id}")
    assert "revoke-link" not in page.text and "fraudulent purchase" in page.text


def test_max_activations_and_eligibility_forms(login_as, seeded):
    lic, _ = seeded
    client = login_as("admin")
    r = client.post(f"/admin/licenses/{lic.id}/max-activations", headers=HX,
                    data={"max-max_activations": "0", "max-reason": "shrink the plan"})
    assert r.status_code == 422
    r = client.post(f"/admin/licenses/{lic.id}/max-activations", headers=HX,
                    data={"max-max_activations": "5", "max-reason": "bought two more seats"})
    assert r.status_code == 200 and "1 of 5 active" in r.text
    r = client.post(f"/admin/licenses/{lic.id}/eligibility", headers=HX,
                    data={"eligibility-eligible_until_version": "1.5.0", "eligibility-reason": "goodwill"})
    assert r.status_code == 422 and "already eligible until 2.0.0" in r.text
    r = client.post(f"/admin/licenses/{lic.id}/eligibility", headers=HX,
                    data={"eligibility-eligible_until_version": "2.1.0", "eligibility-reason": "goodwill"})
    assert r.status_code == 200 and "1.0.0 ≤ v &lt; 2.1.0" in r.text


def test_deactivate_and_replace_devices(session, login_as, seeded):
    lic, desk = seeded
    client = login_as("ops")
    r = client.get(f"/admin/licenses/{lic.id}/devices/{desk.id}/replace")
    assert r.status_code == 200 and "Desk PC" in r.text
    r = client.post(f"/admin/licenses/{lic.id}/devices/{desk.id}/replace",
                    data={"new_fingerprint": "nope", "reason": "new laptop"})
    assert r.status_code == 422 and "64 hexadecimal characters" in r.text
    r = client.post(f"/admin/licenses/{lic.id}/devices/{desk.id}/replace",
                    data={"new_fingerprint": fp("laptop"), "device_name": "New laptop", "reason": "new laptop"})
    assert r.status_code == 302
    new = session.scalar(select(activations.Activation).where(activations.Activation.fingerprint == fp("laptop")))
    r = client.post(f"/admin/licenses/{lic.id}/devices/{new.id}/deactivate", headers=HX,
                    data={f"d{new.id}-reason": "laptop stolen"})
    assert r.status_code == 200 and 'data-status="deactivated"' in r.text and 'data-status="replaced"' in r.text
    assert service.active_count(session, lic.id) == 0


def test_issue_a_license_form(session, login_as, customer):
    owner = customer(email="buyer@corp.example")
    client = login_as("ops")
    assert client.get("/admin/licenses/new").status_code == 200
    r = client.post("/admin/licenses/new", data={"owner_email": "nobody@corp.example", "purchase_price": "299.99",
                                                 "purchased_version": "1.0.0", "max_activations": "3",
                                                 "status": "active"})
    assert r.status_code == 422 and "No user has this email" in r.text
    r = client.post("/admin/licenses/new", data={"owner_email": owner.email, "purchase_price": "299.999",
                                                 "purchased_version": "1.0", "max_activations": "3",
                                                 "status": "active"})
    assert r.status_code == 422 and "at most two decimals" in r.text
    r = client.post("/admin/licenses/new", data={"owner_email": owner.email, "purchase_price": "299.99",
                                                 "purchased_version": "1.0.0", "max_activations": "3",
                                                 "status": "pending"})
    assert r.status_code == 302
    lic = session.scalar(select(service.License).where(service.License.user_id == owner.id))
    assert (lic.status, lic.eligible_until_version, lic.created_by_id) == ("pending", "2.0.0", client.user.id)


def test_versions_editor(login_as, versions):
    support = login_as("support")
    page = support.get("/admin/licenses/versions")
    assert page.status_code == 200 and "2.0.0" in page.text and "Add a version" not in page.text
    assert support.post("/admin/licenses/versions/new", data={"new-version": "4.0.0"}).status_code == 403
    ops = login_as("ops")
    r = ops.post("/admin/licenses/versions/new", headers=HX,
                 data={"new-version": "4.0.0-beta.1", "new-release_date": "2026-01-15", "new-notes": "beta"})
    assert r.status_code == 200 and "4.0.0-beta.1" in r.text
    r = ops.post("/admin/licenses/versions/new", headers=HX,
                 data={"new-version": "2.0.0", "new-release_date": "2026-01-15"})
    assert r.status_code == 422 and "exists already" in r.text
    r = ops.post("/admin/licenses/versions/new", headers=HX, data={"new-version": "v4", "new-release_date": "2026-01-15"})
    assert r.status_code == 422 and "not a semantic version" in r.text


def test_stale_devices(session, login_as, seeded, frozen_clock):
    lic, desk = seeded
    assert "Desk PC" not in login_as("support").get("/admin/licenses/stale-devices?days=30").text
    frozen_clock.advance(timedelta(days=45))
    client = login_as("support")  # a fresh session: the first one idled out meanwhile
    r = client.get("/admin/licenses/stale-devices?days=30&include_test=1", headers=HX)
    assert r.status_code == 200 and "Desk PC" in r.text and lic.license_key in r.text
    assert client.get("/admin/licenses/stale-devices?days=zero").status_code == 422


def test_navigation_shows_license_screens_by_permission(login_as):
    page = login_as("auditor").get("/admin")
    for label in ("Licenses", "App versions", "Stale devices"):
        assert label in page.text
    assert "Stale devices" not in login_as().get("/admin").text


def test_list_sorts_by_key_and_exports_the_filtered_list(login_as, make_license, customer):
    owner = customer(email="sorted@corp.example")
    made = sorted(make_license(owner).license_key for _ in range(3))
    client = login_as("support")
    body = client.get("/admin/licenses?owner=sorted@corp&sort=key").text
    assert [body.index(k) for k in made] == sorted(body.index(k) for k in made)
    body = client.get("/admin/licenses?owner=sorted@corp&sort=-key&limit=2").text
    assert made[2] in body and made[1] in body and made[0] not in body and "sort=-key" in body
    export = client.get("/admin/licenses/export.csv?owner=sorted@corp&sort=key")
    assert [line.split(",")[0] for line in export.text.splitlines()[1:]] == made
