"""Roles as a catalogue: listing them and creating custom roles (super admins only)."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.core import audit
from app.core.errors import DomainError, PermissionDenied
from app.rbac.catalogue import ALL_PERMISSIONS
from app.rbac.models import Permission, Role
from app.rbac.service import has_permission, is_super_admin, permissions_not_held

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{2,59}$")


def all_roles(session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.hierarchy, Role.name)))


def create_custom_role(session, actor, *, name: str, display_name: str, hierarchy: int, permissions: list[str],
                       description: str = "") -> Role:
    """A new role below super_admin (hierarchy 2 to 99); super admins only."""
    if not (is_super_admin(session, actor.id) and has_permission(session, actor, "roles.create")):
        raise PermissionDenied("Only a super admin can create custom roles.", permission="roles.create")
    name = (name or "").strip().lower()
    if not ROLE_NAME.match(name):
        raise DomainError("invalid_name", "Use 3 to 60 lowercase letters, digits or underscores, "
                                          "starting with a letter.", "name")
    if session.scalar(select(Role).where(Role.name == name)):
        raise DomainError("name_taken", f"A role named {name} exists already.", "name")
    display_name = (display_name or "").strip() or name
    if len(display_name) > 120:
        raise DomainError("invalid_display_name", "Keep the display name under 120 characters.", "display_name")
    description = (description or "").strip()
    if len(description) > 255:
        raise DomainError("invalid_description", "Keep the description under 255 characters.", "description")
    if not isinstance(hierarchy, int) or not 2 <= hierarchy <= 99:
        raise DomainError("invalid_hierarchy", "Hierarchy is a number from 2 (high) to 99 (low).", "hierarchy")
    unknown = [p for p in permissions if p not in ALL_PERMISSIONS]
    if unknown or not permissions:
        raise DomainError("invalid_permissions", "Pick one or more permissions from the catalogue.", "permissions")
    missing = permissions_not_held(session, actor, permissions)
    if missing:
        error = PermissionDenied(f"You cannot put permissions you do not hold into a role: {', '.join(missing)}.",
                                 code="permission_not_held", permission=missing[0])
        error.field = "permissions"
        raise error
    perms = session.scalars(select(Permission).where(Permission.name.in_(permissions))).all()
    role = Role(name=name, display_name=display_name, description=description,
                hierarchy=hierarchy, is_system=False, permissions=list(perms))
    session.add(role)
    session.flush()
    audit.record(session, "rbac.role_created", actor=actor, target=role,
                 after={"permissions": sorted(set(permissions)), "hierarchy": hierarchy})
    return role
