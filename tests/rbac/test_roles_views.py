"""The roles screen: the permission matrix and the custom-role form."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.rbac.catalogue import ALL_PERMISSIONS, CATEGORIES, SYSTEM_ROLES
from app.rbac.models import Role

HX = {"HX-Request": "true"}


def test_matrix_shows_every_permission_by_category_for_every_role(login_as):
    body = login_as("analyst").get("/admin/roles").get_data(as_text=True)
    for category in CATEGORIES:
        assert f'scope="rowgroup">{category.capitalize()}</th>' in body
    for spec in SYSTEM_ROLES:
        ticks = re.findall(rf'data-role="{spec["name"]}" data-permission="([^"]+)"><span aria-label="yes"', body)
        assert sorted(ticks) == sorted(spec["permissions"]), spec["name"]
    cells = re.findall(r'data-role="super_admin" data-permission="([^"]+)"', body)
    assert cells == ALL_PERMISSIONS  # 41 rows, catalogue order
    assert "Create a custom role" not in body


def test_super_admin_creates_a_custom_role_with_htmx(login_as, session):
    client = login_as("super_admin")
    page = client.get("/admin/roles").get_data(as_text=True)
    assert "Create a custom role" in page
    response = client.post("/admin/roles", headers=HX, data={
        "role-name": "billing_lead", "role-display_name": "Billing lead", "role-hierarchy": "7",
        "role-description": "Refunds and invoices", "role-permissions": ["subscriptions.view", "subscriptions.refund"]})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="roles-body">')
    assert "Role created." in body and 'data-role="billing_lead" data-permission="subscriptions.refund"><span aria-label="yes"' in body
    role = session.scalars(select(Role).where(Role.name == "billing_lead")).one()
    assert not role.is_system and role.hierarchy == 7 and role.permission_names == ["subscriptions.refund",
                                                                                     "subscriptions.view"]
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "rbac.role_created")).one().actor_id


def test_custom_role_without_javascript_redirects(login_as):
    client = login_as("super_admin")
    response = client.post("/admin/roles", data={"role-name": "night_shift", "role-display_name": "Night shift",
                                                 "role-hierarchy": "8", "role-permissions": "users.view"})
    assert response.status_code == 302 and response.location.endswith("/admin/roles")
    assert "Role night_shift created." in client.get("/admin/roles").get_data(as_text=True)


@pytest.mark.parametrize("data, message", [
    ({"role-name": "Bad Name"}, "lowercase letters, digits or underscores"),
    ({"role-name": "support"}, "A role named support exists already."),
    ({"role-hierarchy": "1"}, "Number must be between 2 and 99."),
    ({"role-hierarchy": "high"}, "Not a valid integer value."),
    ({"role-permissions": []}, "Pick one or more permissions"),
    ({"role-permissions": ["users.view", "god.mode"]}, "Pick one or more permissions"),
])
def test_custom_role_bad_input_is_422_and_creates_nothing(login_as, session, data, message):
    client = login_as("super_admin")
    before = session.scalars(select(Role.name)).all()
    form = {"role-name": "billing_lead", "role-display_name": "Billing lead", "role-hierarchy": "7",
            "role-permissions": ["users.view"], **data}
    response = client.post("/admin/roles", headers=HX, data=form)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert session.scalars(select(Role.name)).all() == before


def test_admin_cannot_create_roles(login_as, session):
    response = login_as("admin").post("/admin/roles", data={"role-name": "mine", "role-display_name": "Mine",
                                                           "role-hierarchy": "9", "role-permissions": "users.view"})
    assert response.status_code == 403 and b"roles.create" in response.data
    assert session.scalar(select(Role).where(Role.name == "mine")) is None
