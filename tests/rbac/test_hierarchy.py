"""The hierarchy rule: assign only strictly below your own best role (super_admin: any),
change only staff below you, never yourself, and touch only permissions you hold."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core import clock
from app.core.errors import DomainError, NotFound, PermissionDenied
from app.rbac import roles, service
from app.rbac.models import Role


def _role(session, name: str) -> Role:
    return session.scalars(select(Role).where(Role.name == name)).one()


def _names(roles) -> list[str]:
    return [r.name for r in roles]


@pytest.mark.parametrize("roles, expected", [
    (("super_admin",), ["super_admin", "admin", "ops", "support", "analyst", "auditor"]),
    (("admin",), ["ops", "support", "analyst", "auditor"]),
    (("ops",), ["support"]),  # analyst and auditor hold permissions ops lacks
    (("auditor",), []),
    (("support", "admin"), ["ops", "support", "analyst", "auditor"]),  # the best role counts
    ((), []),
])
def test_assignable_roles_are_strictly_below_the_best_role(session, make_user, roles, expected):
    actor = make_user(roles=roles, staff=True)
    assert _names(service.assignable_roles(session, actor)) == expected


def test_ops_with_roles_assign_can_hand_out_only_lower_roles(session, make_user):
    root = make_user(roles=("super_admin",))
    ops = make_user(roles=("ops",))
    service.grant_override(session, root, ops, "roles.assign", "grant", reason="Team lead duties")
    newcomer = make_user(staff=False)
    assert service.assign_role(session, ops, newcomer, _role(session, "support").id, reason="Support hire")
    with pytest.raises(PermissionDenied, match="Operations is not one of them"):
        service.assign_role(session, ops, make_user(staff=False), _role(session, "ops").id, reason="Peer")


def test_no_one_changes_their_own_access_not_even_super_admin(session, make_user):
    root = make_user(roles=("super_admin",))
    for call in (
        lambda: service.assign_role(session, root, root, _role(session, "admin").id, reason="Myself"),
        lambda: service.grant_override(session, root, root, "users.view", "revoke", reason="Myself"),
        lambda: service.revoke_role(session, root, root, service.active_assignments(session, root.id)[0].id,
                                    reason="Myself"),
    ):
        with pytest.raises(PermissionDenied) as denied:
            call()
        assert denied.value.code == "self_assignment"


def test_staff_at_or_above_the_actor_cannot_be_changed(session, make_user):
    admin, peer = make_user(roles=("admin",)), make_user(roles=("admin",))
    root = make_user(roles=("super_admin",))
    for target in (peer, root):
        with pytest.raises(PermissionDenied) as denied:
            service.grant_override(session, admin, target, "users.view", "revoke", reason="Curb")
        assert denied.value.code == "hierarchy_violation"
    # a lower role on a peer is still a change to a peer
    with pytest.raises(PermissionDenied, match="at or above your own"):
        service.assign_role(session, admin, peer, _role(session, "analyst").id, reason="Extra")
    # super admin may change other super admins
    other_root = make_user(roles=("super_admin",))
    service.grant_override(session, root, other_root, "roles.create", "revoke", reason="Separation of duties")
    assert not service.has_permission(session, other_root, "roles.create")


def test_a_roleless_holder_of_roles_assign_outranks_nobody(session, make_user):
    root = make_user(roles=("super_admin",))
    helper = make_user(staff=True)
    service.grant_override(session, root, helper, "roles.assign", "grant", reason="Odd setup")
    assert service.has_permission(session, helper, "roles.assign")
    with pytest.raises(PermissionDenied) as denied:
        service.grant_override(session, helper, root, "roles.assign", "revoke", reason="Coup")
    assert denied.value.code == "hierarchy_violation"


def test_only_held_permissions_can_be_granted_revoked_or_removed(session, make_user):
    root, admin = make_user(roles=("super_admin",)), make_user(roles=("admin",))
    support = make_user(roles=("support",))
    for action in ("grant", "revoke"):
        with pytest.raises(PermissionDenied) as denied:
            service.grant_override(session, admin, support, "users.impersonate", action, reason="Debugging")
        assert denied.value.code == "permission_not_held" and denied.value.permission == "users.impersonate"
    override = service.grant_override(session, root, support, "users.impersonate", "grant", reason="Debugging",
                                      expires_at=clock.now() + timedelta(days=7))
    with pytest.raises(PermissionDenied, match="you do not hold it yourself"):
        service.remove_override(session, admin, support, override.id, reason="Too much power")
    service.remove_override(session, root, support, override.id, reason="Done debugging")
    assert not service.has_permission(session, support, "users.impersonate")


def test_ended_or_foreign_rows_are_not_found(session, make_user, frozen_clock):
    admin = make_user(roles=("admin",))
    analyst = make_user(roles=("analyst",))
    temp = service.assign_role(session, admin, analyst, _role(session, "auditor").id, reason="Audit week",
                               expires_at=clock.now() + timedelta(hours=1))
    frozen_clock.advance(timedelta(hours=1))  # expired, the job has not run yet
    with pytest.raises(NotFound):
        service.revoke_role(session, admin, analyst, temp.id, reason="Cleanup")
    with pytest.raises(NotFound):
        service.assign_role(session, admin, analyst, _role(session, "support").id, reason="Swap",
                            replace_assignment_id=temp.id)
    other = make_user(roles=("support",))
    foreign = service.active_assignments(session, other.id)[0]
    with pytest.raises(NotFound):
        service.revoke_role(session, admin, analyst, foreign.id, reason="Wrong user")


def test_role_already_held_and_naive_expiry_are_refused(session, make_user):
    admin, ops = make_user(roles=("admin",)), make_user(roles=("ops",))
    with pytest.raises(DomainError) as err:
        service.assign_role(session, admin, ops, _role(session, "ops").id, reason="Again")
    assert err.value.code == "already_assigned"
    with pytest.raises(DomainError) as err:
        service.assign_role(session, admin, ops, _role(session, "analyst").id, reason="Naive",
                            expires_at=clock.now().replace(tzinfo=None) + timedelta(days=1))
    assert err.value.code == "invalid_expiry"


def test_deleted_users_cannot_be_given_access(session, make_user):
    admin = make_user(roles=("admin",))
    gone = make_user(staff=False, deleted_at=clock.now())
    with pytest.raises(DomainError) as err:
        service.assign_role(session, admin, gone, _role(session, "analyst").id, reason="Ghost")
    assert err.value.code == "user_deleted"


def test_custom_roles_fit_into_the_hierarchy(session, make_user):
    root, admin = make_user(roles=("super_admin",)), make_user(roles=("admin",))
    billing = roles.create_custom_role(session, root, name="billing_lead", display_name="Billing lead",
                                         hierarchy=7, permissions=["subscriptions.view", "subscriptions.refund"])
    deputy = roles.create_custom_role(session, root, name="deputy", display_name="Deputy", hierarchy=2,
                                        permissions=["users.view"])
    assert billing in service.assignable_roles(session, admin)
    assert deputy not in service.assignable_roles(session, admin)  # same level as admin
    target = make_user(staff=False)
    service.assign_role(session, admin, target, billing.id, reason="Billing desk")
    assert service.effective_permissions(session, target.id) == {"subscriptions.view", "subscriptions.refund"}


@pytest.mark.parametrize("fields, code", [
    ({"name": "x"}, "invalid_name"),
    ({"name": "Bad Name!"}, "invalid_name"),
    ({"name": "ops"}, "name_taken"),
    ({"hierarchy": 1}, "invalid_hierarchy"),
    ({"hierarchy": 100}, "invalid_hierarchy"),
    ({"permissions": []}, "invalid_permissions"),
    ({"permissions": ["users.view", "root.everything"]}, "invalid_permissions"),
    ({"display_name": "x" * 121}, "invalid_display_name"),
])
def test_custom_role_bad_input(session, make_user, fields, code):
    root = make_user(roles=("super_admin",))
    args = {"name": "billing_lead", "display_name": "Billing lead", "hierarchy": 7,
            "permissions": ["subscriptions.view"], **fields}
    with pytest.raises(DomainError) as err:
        roles.create_custom_role(session, root, **args)
    assert err.value.code == code


def test_custom_roles_need_a_super_admin_holding_roles_create(session, make_user):
    root, other_root = make_user(roles=("super_admin",)), make_user(roles=("super_admin",))
    admin = make_user(roles=("admin",))
    service.grant_override(session, root, admin, "roles.view", "revoke", reason="Irrelevant")  # unrelated change
    with pytest.raises(PermissionDenied):
        roles.create_custom_role(session, admin, name="mine", display_name="Mine", hierarchy=9,
                                   permissions=["users.view"])
    service.grant_override(session, root, other_root, "roles.create", "revoke", reason="Separation of duties")
    with pytest.raises(PermissionDenied):
        roles.create_custom_role(session, other_root, name="mine", display_name="Mine", hierarchy=9,
                                   permissions=["users.view"])
