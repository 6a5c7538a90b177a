"""Editing and deleting custom roles (roles.edit, roles.delete; super admins only, as creating).
System roles are the catalogue's and stay as seeded; a role still held by someone is not deleted."""
from __future__ import annotations

from sqlalchemy import select

from app.core import audit, clock
from app.core.audit import require_reason
from app.core.errors import Conflict, DomainError, PermissionDenied
from app.rbac.catalogue import ALL_PERMISSIONS
from app.rbac.models import Permission, Role, RoleAssignment
from app.rbac.service import has_permission, is_super_admin


def _require(session, actor, permission: str) -> None:
    if not (is_super_admin(session, actor.id) and has_permission(session, actor, permission)):
        raise PermissionDenied(f"Only a super admin with {permission} can do this.", permission=permission)


def _custom(session, role_id: int) -> Role:
    role = session.get(Role, role_id)
    if role is None:
        raise DomainError("resource_missing", "No such role.", "role", status=404)
    if role.is_system:
        raise DomainError("system_role", f"{role.display_name} is a system role: it stays as seeded.", "role",
                          status=409)
    return role


def update_custom_role(session, actor, role_id: int, *, display_name: str, description: str,
                       permissions: list[str], reason: str) -> Role:
    _require(session, actor, "roles.edit")
    role = _custom(session, role_id)
    display_name, description = (display_name or "").strip(), (description or "").strip()
    if not display_name or len(display_name) > 120:
        raise DomainError("invalid_display_name", "Give a display name of at most 120 characters.", "display_name")
    if len(description) > 255:
        raise DomainError("invalid_description", "Keep the description under 255 characters.", "description")
    if [p for p in permissions if p not in ALL_PERMISSIONS] or not permissions:
        raise DomainError("invalid_permissions", "Pick one or more permissions from the catalogue.", "permissions")
    reason = require_reason(reason, minimum=3)
    before = {"display_name": role.display_name, "description": role.description, "permissions": role.permission_names}
    role.display_name, role.description = display_name, description
    role.permissions = list(session.scalars(select(Permission).where(Permission.name.in_(permissions))))
    audit.record(session, "rbac.role_edited", actor=actor, target=role, before=before,
                 after={"display_name": display_name, "description": description,
                        "permissions": sorted(set(permissions))}, reason=reason)
    return role


def delete_custom_role(session, actor, role_id: int, reason: str) -> None:
    _require(session, actor, "roles.delete")
    role = _custom(session, role_id)
    reason = require_reason(reason, minimum=3)
    now = clock.now()
    held = session.scalar(select(RoleAssignment.id).where(
        RoleAssignment.role_id == role.id, RoleAssignment.is_active.is_(True),
        (RoleAssignment.expires_at.is_(None)) | (RoleAssignment.expires_at > now)).limit(1))
    if held is not None:
        raise Conflict("role_in_use", f"{role.display_name} is still held: revoke it from everyone first.", "role")
    audit.record(session, "rbac.role_deleted", actor=actor, target=role,
                 before={"name": role.name, "permissions": role.permission_names}, reason=reason)
    for old in session.scalars(select(RoleAssignment).where(RoleAssignment.role_id == role.id)):
        session.delete(old)  # expired assignments only (the role change log keeps their history)
    session.delete(role)
