"""A user's access panel: the HTMX inline forms, the full-page fallback, and bad input."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core import clock
from app.core.audit import AuditEntry
from app.rbac import service
from app.rbac.models import PermissionOverride, RoleAssignment, RoleChangeLog
from tests.rbac.conftest import HTMX, OFFICE


def _counts(session):
    return tuple(session.scalar(select(func.count()).select_from(model))
                 for model in (RoleAssignment, PermissionOverride, RoleChangeLog, AuditEntry))


def _assign(client, target, role, reason="New team member - operations", htmx=True, **extra):
    data = {"assign-role_id": role, "assign-reason": reason, **extra}
    return client.post(f"/admin/users/{target.id}/roles", data=data, headers=HTMX if htmx else {},
                       environ_overrides=OFFICE)


def test_user_page_shows_roles_overrides_and_effective_permissions(login_as, make_user, session):
    support = make_user(roles=("support",), first_name="Support", last_name="Agent")
    admin = make_user(roles=("admin",))
    client = login_as("ops")
    session.add(PermissionOverride(user_id=support.id, permission="credits.grant", action="revoke",
                                   reason="Training period", granted_by_id=admin.id))
    session.flush()
    page = client.get(f"/admin/users/{support.id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Support Agent" in body and 'data-role="support"' in body
    assert 'data-permission="credits.grant"' in body and "Training period" in body
    assert 'data-effective="users.view"' in body and 'data-effective="credits.grant"' not in body
    assert "Effective permissions (10)" in body  # support's 11 minus the revoked credits.grant
    assert "Assign a role" not in body  # ops has no roles.assign: read only
    assert "You need the roles.assign permission." in body


def test_assign_role_with_htmx_swaps_the_panel_and_logs_everything(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(email="new.ops@example.com", staff=False, totp=False)
    response = _assign(client, target, role_id("ops"), **{"assign-notify_user": "y"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="access">') and "<html" not in body
    assert "Role assigned." in body and 'data-role="ops"' in body
    assignment = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == target.id)).one()
    assert assignment.notify_user and assignment.assigned_by_id == client.user.id and not assignment.is_test
    session.refresh(target)
    assert target.is_staff
    log = session.scalars(select(RoleChangeLog).where(RoleChangeLog.target_user_id == target.id)).one()
    assert log.action == "role_assigned" and log.changed_by_id == client.user.id
    assert log.changed_by_label == client.user.email
    assert log.old_permissions == [] and len(log.new_permissions) == 25
    assert log.ip_address == "203.0.113.45" and log.user_agent.startswith("Mozilla/5.0 (Windows")
    assert log.reason == "New team member - operations"
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "rbac.role_assigned")).one()
    assert audit.target_id == str(target.id) and audit.after["role"] == "ops" and audit.after["notify_user"]


def test_without_javascript_the_form_posts_and_redirects(staff, make_user, role_id):
    client = staff("admin")
    target = make_user(staff=False, totp=False)
    response = _assign(client, target, role_id("support"), htmx=False)
    assert response.status_code == 302 and response.location.endswith(f"/admin/users/{target.id}")
    page = client.get(response.location).get_data(as_text=True)
    assert "Role assigned." in page and 'data-role="support"' in page


def test_bad_input_without_javascript_rerenders_the_whole_page(staff, make_user, role_id):
    client = staff("admin")
    target = make_user(staff=False, totp=False)
    response = _assign(client, target, role_id("support"), reason="", htmx=False)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in body and "Give a reason" in body


@pytest.mark.parametrize("case, field_values, message", [
    ("missing reason", {"assign-reason": "  "}, "Give a reason"),
    ("short reason", {"assign-reason": "no"}, "3 to 1,000 characters"),
    ("expiry in the past", {"assign-expires_at": "2020-01-01T00:00"}, "The expiry must be in the future."),
    ("garbled expiry", {"assign-expires_at": "next tuesday"}, "Use a date and time"),
    ("role above own", {"assign-role_id": "super_admin"}, "Super Administrator is not one of them"),
    ("same level role", {"assign-role_id": "admin"}, "Administrator is not one of them"),
    ("tampered role id", {"assign-role_id": "987654"}, "No such role."),
    ("non-numeric role id", {"assign-role_id": "ops; drop table"}, "Invalid Choice"),
])
def test_bad_assignments_are_refused_and_change_nothing(staff, make_user, session, role_id, case, field_values,
                                                        message):
    client = staff("admin")
    target = make_user(staff=False, totp=False)
    before = _counts(session)
    data = {"assign-role_id": str(role_id("ops")), "assign-reason": "A good reason"}
    for key, value in field_values.items():
        data[key] = str(role_id(value)) if key == "assign-role_id" and role_id(value) else value
    response = client.post(f"/admin/users/{target.id}/roles", data=data, headers=HTMX)
    assert response.status_code == 422, case
    assert message in response.get_data(as_text=True), case
    assert _counts(session) == before
    session.refresh(target)
    assert not target.is_staff


def test_assigning_to_yourself_is_refused(staff, session, role_id):
    client = staff("admin")
    before = _counts(session)
    response = _assign(client, client.user, role_id("ops"))
    assert response.status_code == 422
    assert "You cannot change your own roles or permissions." in response.get_data(as_text=True)
    assert _counts(session) == before


def test_staff_at_or_above_your_level_are_read_only(staff, make_user, session, role_id):
    client = staff("admin")
    peer = make_user(roles=("admin",))
    page = client.get(f"/admin/users/{peer.id}").get_data(as_text=True)
    assert "holds a role at or above your own" in page and "Assign a role" not in page
    before = _counts(session)
    response = _assign(client, peer, role_id("analyst"))
    assert response.status_code == 422 and "at or above your own" in response.get_data(as_text=True)
    assert _counts(session) == before


def test_change_role_logs_old_and_new_permissions(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(roles=("support",))
    old = service.active_assignments(session, target.id)[0]
    response = client.post(f"/admin/users/{target.id}/roles/{old.id}/change", headers=HTMX, environ_overrides=OFFICE,
                           data={f"change{old.id}-role_id": role_id("ops"),
                                 f"change{old.id}-reason": "Promotion from Support to Operations"})
    assert response.status_code == 200 and "Role changed." in response.get_data(as_text=True)
    assert [a.role.name for a in service.active_assignments(session, target.id)] == ["ops"]
    log = session.scalars(select(RoleChangeLog).where(RoleChangeLog.target_user_id == target.id)).one()
    assert log.action == "role_changed" and log.old_role.name == "support" and log.new_role.name == "ops"
    assert len(log.old_permissions) == 11 and len(log.new_permissions) == 25
    session.refresh(old)
    assert not old.is_active and old.ended_at is not None


def test_change_to_the_same_role_is_refused(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(roles=("support",))
    old = service.active_assignments(session, target.id)[0]
    before = _counts(session)
    response = client.post(f"/admin/users/{target.id}/roles/{old.id}/change", headers=HTMX,
                           data={f"change{old.id}-role_id": role_id("support"), f"change{old.id}-reason": "Same"})
    assert response.status_code == 422 and "pick another role" in response.get_data(as_text=True)
    assert _counts(session) == before


def test_revoke_role(staff, make_user, session):
    client = staff("admin")
    target = make_user(roles=("analyst",))
    assignment = service.active_assignments(session, target.id)[0]
    response = client.post(f"/admin/users/{target.id}/roles/{assignment.id}/revoke", headers=HTMX,
                           data={f"revoke{assignment.id}-reason": "Left the team"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Role revoked." in body
    assert 'data-role="analyst" data-status="ended"' in body
    assert service.effective_permissions(session, target.id) == set()
    log = session.scalars(select(RoleChangeLog).where(RoleChangeLog.target_user_id == target.id)).one()
    assert log.action == "role_revoked" and log.new_permissions == [] and len(log.old_permissions) == 11


def test_tampered_assignment_id_of_another_user_is_refused(staff, make_user, session):
    client = staff("admin")
    target, other = make_user(roles=("analyst",)), make_user(roles=("support",))
    foreign = service.active_assignments(session, other.id)[0]
    before = _counts(session)
    response = client.post(f"/admin/users/{target.id}/roles/{foreign.id}/revoke", headers=HTMX,
                           data={f"revoke{foreign.id}-reason": "Sneaky"})
    assert response.status_code == 422
    assert "No such active role assignment." in response.get_data(as_text=True)
    assert _counts(session) == before
    assert service.active_assignments(session, other.id)[0].id == foreign.id


def test_tampered_override_id_and_change_target_are_refused(staff, make_user, session, role_id):
    client = staff("admin")
    root = make_user(roles=("super_admin",))
    target, other = make_user(roles=("analyst",)), make_user(roles=("support",))
    foreign = service.grant_override(session, root, other, "credits.grant", "revoke", reason="Training")
    foreign_assignment = service.active_assignments(session, other.id)[0]
    before = _counts(session)
    removed = client.post(f"/admin/users/{target.id}/overrides/{foreign.id}/remove", headers=HTMX,
                          data={f"remove{foreign.id}-reason": "Sneaky"})
    assert removed.status_code == 422
    assert "No such active permission override." in removed.get_data(as_text=True)
    changed = client.post(f"/admin/users/{target.id}/roles/{foreign_assignment.id}/change", headers=HTMX,
                          data={f"change{foreign_assignment.id}-role_id": role_id("auditor"),
                                f"change{foreign_assignment.id}-reason": "Sneaky"})
    assert changed.status_code == 422 and "No such active role assignment." in changed.get_data(as_text=True)
    assert _counts(session) == before and foreign.is_active


def test_grant_and_remove_an_override(staff, make_user, session):
    client = staff("admin")
    target = make_user(roles=("ops",))
    expiry = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/admin/users/{target.id}/overrides", headers=HTMX, environ_overrides=OFFICE, data={
        "override-permission": "licenses.revoke", "override-action": "grant",
        "override-reason": "Emergency fraud investigation", "override-expires_at": expiry})
    assert response.status_code == 200 and "Override saved." in response.get_data(as_text=True)
    assert "licenses.revoke" in service.effective_permissions(session, target.id)
    override = service.active_overrides(session, target.id)[0]
    assert override.expires_at.strftime("%Y-%m-%dT%H:%M") == expiry and override.expires_at.tzinfo is not None
    granted = session.scalars(select(RoleChangeLog).where(RoleChangeLog.action == "permission_override_granted")).one()
    assert granted.override["expires_at"].startswith(expiry) and granted.reason == "Emergency fraud investigation"
    assert len(granted.new_permissions) == 26 and "licenses.revoke" not in granted.old_permissions

    response = client.post(f"/admin/users/{target.id}/overrides/{override.id}/remove", headers=HTMX,
                           data={f"remove{override.id}-reason": "Investigation closed"})
    assert response.status_code == 200 and "Override removed." in response.get_data(as_text=True)
    assert "licenses.revoke" not in service.effective_permissions(session, target.id)
    removed = session.scalars(select(RoleChangeLog).where(RoleChangeLog.action == "permission_override_revoked")).one()
    assert removed.old_permissions == granted.new_permissions and removed.new_permissions == granted.old_permissions


@pytest.mark.parametrize("data, message", [
    ({"override-permission": "users.impersonate"}, "you do not hold it yourself"),
    ({"override-permission": "roles.create", "override-action": "revoke"}, "you do not hold it yourself"),
    ({"override-permission": "billing.print_money"}, "is not a permission"),
    ({"override-action": "maybe"}, "The override action is grant or revoke."),
    ({"override-reason": ""}, "Give a reason"),
    ({"override-expires_at": "2001-01-01T00:00"}, "The expiry must be in the future."),
])
def test_bad_overrides_are_refused_and_change_nothing(staff, make_user, session, data, message):
    client = staff("admin")
    target = make_user(roles=("ops",))
    before = _counts(session)
    form = {"override-permission": "licenses.revoke", "override-action": "grant", "override-reason": "Because", **data}
    response = client.post(f"/admin/users/{target.id}/overrides", headers=HTMX, data=form)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert _counts(session) == before


def test_a_second_override_for_the_same_permission_is_refused(staff, make_user, session):
    client = staff("admin")
    target = make_user(roles=("support",))
    form = {"override-permission": "credits.grant", "override-action": "revoke", "override-reason": "Training"}
    assert client.post(f"/admin/users/{target.id}/overrides", headers=HTMX, data=form).status_code == 200
    before = _counts(session)
    again = client.post(f"/admin/users/{target.id}/overrides", headers=HTMX, data=form)
    assert again.status_code == 422 and "already in force" in again.get_data(as_text=True)
    assert _counts(session) == before


def test_changes_need_sudo_mode(login_as, make_user, session, role_id):
    client = login_as("admin")
    target = make_user(staff=False, totp=False)
    before = _counts(session)
    plain = client.post(f"/admin/users/{target.id}/roles", data={"assign-role_id": role_id("ops")},
                        headers={"Referer": f"http://admin.test/admin/users/{target.id}"})
    assert plain.status_code == 302 and plain.location.endswith(f"/auth/sudo?next=/admin/users/{target.id}")
    htmx = client.post(f"/admin/users/{target.id}/roles", data={"assign-role_id": role_id("ops"), "assign-reason": "x"},
                       headers={**HTMX, "HX-Current-URL": f"http://admin.test/admin/users/{target.id}"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].endswith(f"/auth/sudo?next=/admin/users/{target.id}")
    assert _counts(session) == before
    page = client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    assert 'id="confirm-sudo"' in page


def test_changes_need_roles_assign(staff, make_user, session, role_id):
    client = staff("support")  # scenario 5: support cannot assign roles at all
    target = make_user(staff=False, totp=False)
    before = _counts(session)
    response = _assign(client, target, role_id("admin"), htmx=False)
    assert response.status_code == 403 and b"roles.assign" in response.data
    assert _counts(session) == before


def test_change_on_a_test_account_runs_in_test_mode(staff, make_user, session, role_id):
    client = staff("admin")
    target = make_user(test=True, staff=False, totp=False)
    response = _assign(client, target, role_id("analyst"))
    assert response.status_code == 200 and response.headers.get("X-Test-Mode") == "true"
    assignment = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == target.id)).one()
    log = session.scalars(select(RoleChangeLog).where(RoleChangeLog.target_user_id == target.id)).one()
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "rbac.role_assigned")).one()
    assert assignment.is_test and log.is_test and audit.is_test


def test_unknown_user_page_is_404(staff):
    assert staff("admin").get("/admin/users/999999").status_code == 404


def test_change_for_an_unknown_user_is_404(staff):
    response = staff("admin").post("/admin/users/999999/roles", data={"assign-role_id": "1", "assign-reason": "why"})
    assert response.status_code == 404 and b"No such user." in response.data
