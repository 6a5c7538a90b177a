"""Issue 15 item 6: handing out a role (or creating a custom one) needs every permission in it.

ops, delegated roles.assign, gave a puppet the auditor role and read the audit log through it.
A role now carries only power its giver holds, as overrides already required.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.errors import PermissionDenied
from app.rbac import roles, service
from app.rbac.models import Role, RoleAssignment


def _role(session, name: str) -> Role:
    return session.scalars(select(Role).where(Role.name == name)).one()


@pytest.fixture
def delegated_ops(session, make_user):
    root = make_user(roles=("super_admin",))
    ops = make_user(roles=("ops",))
    service.grant_override(session, root, ops, "roles.assign", "grant", reason="Team lead duties")
    session.commit()
    return ops


def test_delegated_ops_cannot_give_a_puppet_the_auditor_role(session, make_user, delegated_ops):
    puppet = make_user(staff=False)
    with pytest.raises(PermissionDenied) as denied:
        service.assign_role(session, delegated_ops, puppet, _role(session, "auditor").id, reason="Puppet")
    assert denied.value.code == "permission_not_held" and denied.value.permission == "roles.view_audit_log"
    assert not service.has_permission(session, puppet, "roles.view_audit_log")
    # A role whose permissions ops holds is still fine, and only such roles are offered.
    assert service.assign_role(session, delegated_ops, puppet, _role(session, "support").id, reason="Support hire")
    assert [r.name for r in service.assignable_roles(session, delegated_ops)] == ["support"]


def test_the_screen_refuses_it_with_a_message_and_changes_nothing(session, make_user, delegated_ops, login_as,
                                                                 sudo):
    puppet = make_user(staff=True)  # a roleless staff account with MFA: what ops would sign in as
    client = sudo(login_as(user=delegated_ops))
    response = client.post(f"/admin/users/{puppet.id}/roles", headers={"HX-Request": "true"},
                           data={"assign-role_id": _role(session, "auditor").id, "assign-reason": "Puppet"})
    assert response.status_code == 422
    assert "you do not hold roles.view_audit_log" in response.get_data(as_text=True)
    assert session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == puppet.id)).all() == []
    assert login_as(user=puppet).get("/admin/audit").status_code == 403


def test_changing_a_role_into_one_not_held_is_refused(session, make_user, delegated_ops):
    target = make_user(roles=("support",))
    current = service.active_assignments(session, target.id)[0]
    with pytest.raises(PermissionDenied, match="analytics.export_data"):
        service.assign_role(session, delegated_ops, target, _role(session, "analyst").id, reason="Swap",
                            replace_assignment_id=current.id)
    assert [a.role.name for a in service.active_assignments(session, target.id)] == ["support"]


def test_super_admin_holds_all_but_a_revoked_permission_cannot_go_into_a_custom_role(session, make_user):
    root, other_root = make_user(roles=("super_admin",)), make_user(roles=("super_admin",))
    assert roles.create_custom_role(session, root, name="auditor_plus", display_name="Auditor+", hierarchy=6,
                                    permissions=["roles.view_audit_log", "users.impersonate"])
    service.grant_override(session, other_root, root, "users.impersonate", "revoke", reason="Not needed")
    with pytest.raises(PermissionDenied) as denied:
        roles.create_custom_role(session, root, name="impersonators", display_name="Impersonators", hierarchy=7,
                                 permissions=["users.view", "users.impersonate"])
    assert denied.value.code == "permission_not_held" and denied.value.field == "permissions"
    assert session.scalar(select(Role).where(Role.name == "impersonators")) is None
