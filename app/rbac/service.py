"""RBAC rules: effective permissions, the hierarchy rule, assignments and overrides.

Effective = union of in-force role assignments + in-force grants - in-force revokes.
"In force" is checked against the clock at every call, so an expired override stops
working at once; the expiry job only tidies the rows and writes the log.

Who may change whom: the actor holds roles.assign, is not the target, and outranks the
target (the target's best role is strictly below the actor's best role; super_admin
outranks everyone). Roles handed out must be strictly below the actor's best role
(super_admin: any) and hold only permissions the actor holds, and an override may only
touch a permission the actor holds.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import lazyload

from app.core import audit, clock
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound, PermissionDenied
from app.core.requestinfo import client_ip, user_agent
from app.rbac.catalogue import ALL_PERMISSIONS, CATEGORIES, SYSTEM_ROLES, category_of
from app.rbac.models import Permission, PermissionOverride, Role, RoleAssignment, RoleChangeLog
from app.rbac.notices import queue_role_notice
from app.users.models import User



def active_assignments(session, user_id: int, at: datetime | None = None) -> list[RoleAssignment]:
    at = at or clock.now()
    rows = session.scalars(
        select(RoleAssignment).where(RoleAssignment.user_id == user_id, RoleAssignment.is_active.is_(True))
    ).all()
    return [a for a in rows if a.in_force(at)]


def active_overrides(session, user_id: int, at: datetime | None = None) -> list[PermissionOverride]:
    at = at or clock.now()
    rows = session.scalars(
        select(PermissionOverride).where(
            PermissionOverride.user_id == user_id, PermissionOverride.is_active.is_(True)
        )
    ).all()
    return [o for o in rows if o.in_force(at)]


def assignments_for(session, user_id: int) -> list[RoleAssignment]:
    """Every assignment of a user, in force or ended, newest first (for the user's page)."""
    return list(session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user_id)
                                .order_by(RoleAssignment.assigned_at.desc(), RoleAssignment.id.desc())))


def overrides_for(session, user_id: int) -> list[PermissionOverride]:
    return list(session.scalars(select(PermissionOverride).where(PermissionOverride.user_id == user_id)
                                .order_by(PermissionOverride.granted_at.desc(), PermissionOverride.id.desc())))


def _combine(assignments, overrides) -> set[str]:
    perms: set[str] = set()
    for assignment in assignments:
        perms.update(p.name for p in assignment.role.permissions)
    perms.update(o.permission for o in overrides if o.action == "grant")
    perms.difference_update(o.permission for o in overrides if o.action == "revoke")
    return perms


def effective_permissions(session, user_id: int, at: datetime | None = None) -> set[str]:
    at = at or clock.now()
    return _combine(active_assignments(session, user_id, at), active_overrides(session, user_id, at))


def permission_sources(session, user_id: int) -> dict[str, list[str]]:
    """Why each effective permission is held: the roles and grants that give it."""
    sources: dict[str, list[str]] = {}
    for assignment in active_assignments(session, user_id):
        for perm in assignment.role.permissions:
            sources.setdefault(perm.name, []).append(assignment.role.display_name)
    overrides = active_overrides(session, user_id)
    for o in overrides:
        if o.action == "grant":
            sources.setdefault(o.permission, []).append("override")
    for o in overrides:
        if o.action == "revoke":
            sources.pop(o.permission, None)
    return dict(sorted(sources.items()))


def has_permission(session, user, permission: str) -> bool:
    return user is not None and permission in effective_permissions(session, user.id)


def best_hierarchy(session, user_id: int) -> int | None:
    levels = [a.role.hierarchy for a in active_assignments(session, user_id)]
    return min(levels) if levels else None


def is_super_admin(session, user_id: int) -> bool:
    return any(a.role.name == "super_admin" for a in active_assignments(session, user_id))


def _roles_below(session, actor) -> list[Role]:
    """Roles strictly below the actor's best role (super_admin: any)."""
    roles = session.scalars(select(Role).order_by(Role.hierarchy, Role.name)).all()
    if is_super_admin(session, actor.id):
        return list(roles)
    best = best_hierarchy(session, actor.id)
    if best is None:
        return []
    return [r for r in roles if r.hierarchy > best]


def permissions_not_held(session, actor, permissions) -> list[str]:
    """What of `permissions` the actor lacks: a role or override may hand out only what one holds."""
    return sorted(set(permissions) - effective_permissions(session, actor.id))


def assignable_roles(session, actor) -> list[Role]:
    """Roles the actor may hand out: below its best role, and every permission in them held."""
    held = effective_permissions(session, actor.id)
    return [r for r in _roles_below(session, actor) if set(r.permission_names) <= held]


def _primary(assignments: list[RoleAssignment]) -> RoleAssignment | None:
    """The assignment of the user's best role: what an override is filed against."""
    return min(assignments, key=lambda a: (a.role.hierarchy, a.id)) if assignments else None


def _log(session, action, target, actor, *, old_perms, new_perms, reason, old_role=None, new_role=None,
         override=None) -> RoleChangeLog:
    entry = RoleChangeLog(
        target_user_id=target.id,
        changed_by_id=getattr(actor, "id", None),
        changed_by_label=getattr(actor, "email", None) or audit.SYSTEM,
        action=action,
        old_role_id=getattr(old_role, "id", None),
        new_role_id=getattr(new_role, "id", None),
        override=override,
        old_permissions=sorted(old_perms),
        new_permissions=sorted(new_perms),
        reason=reason,
        ip_address=client_ip() if actor is not None else audit.SYSTEM,
        user_agent=user_agent() if actor is not None else "background-job",
    )
    if target.is_test:
        entry.is_test = True
    session.add(entry)
    return entry


def _require_reason(reason: str | None) -> str:
    return require_reason(reason, minimum=3)


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise DomainError("invalid_expiry", "The expiry needs a time zone (UTC).", "expires_at")
    if expires_at <= clock.now():
        raise DomainError("expiry_in_past", "The expiry must be in the future.", "expires_at")


def _outranks(session, actor, target) -> bool:
    if is_super_admin(session, actor.id):
        return True
    best = best_hierarchy(session, actor.id)
    if best is None:
        return False  # a roleless holder of roles.assign (by override) outranks nobody
    target_best = best_hierarchy(session, target.id)
    return target_best is None or target_best > best


def _check_can_manage(session, actor, target, role: Role | None = None) -> None:
    if not has_permission(session, actor, "roles.assign"):
        raise PermissionDenied("You need the roles.assign permission.", permission="roles.assign")
    if actor.id == target.id:
        raise PermissionDenied("You cannot change your own roles or permissions.", code="self_assignment")
    if target.deleted_at is not None:
        raise DomainError("user_deleted", f"{target.email} is deleted; their access cannot change.")
    if not _outranks(session, actor, target):
        raise PermissionDenied(f"{target.email} holds a role at or above your own; you cannot change their access.",
                               code="hierarchy_violation")
    if role is not None and role not in _roles_below(session, actor):
        raise PermissionDenied(
            f"You can only assign roles below your own; {role.display_name} is not one of them.",
            code="hierarchy_violation",
        )


def _check_holds_role(session, actor, role: Role) -> None:
    """Handing out a role must not hand out power the actor lacks (as for overrides)."""
    missing = permissions_not_held(session, actor, role.permission_names)
    if missing:
        error = PermissionDenied(f"You cannot assign {role.display_name}: you do not hold {', '.join(missing)}.",
                                 code="permission_not_held", permission=missing[0])
        error.field = "role_id"  # shown next to the role picker
        raise error


def _check_holds(session, actor, permission: str, verb: str) -> None:
    if not has_permission(session, actor, permission):
        raise PermissionDenied(f"You cannot {verb} {permission}: you do not hold it yourself.",
                               code="permission_not_held", permission=permission)


def management_blocker(session, actor, target) -> str | None:
    """Why the actor may not change the target's access (None if it may): for the screens."""
    try:
        _check_can_manage(session, actor, target)
    except DomainError as error:
        return error.message
    return None


def assign_role(session, actor, target, role_id: int, *, reason: str, expires_at: datetime | None = None,
                notify_user: bool = False, replace_assignment_id: int | None = None) -> RoleAssignment:
    """Assign a role (or change one: replace_assignment_id ends the old one in the same step).

    With notify_user the target gets an email through the notifications outbox (rbac.notices).
    """
    reason = _require_reason(reason)
    _check_expiry(expires_at)
    role = session.get(Role, role_id) if isinstance(role_id, int) else None
    if role is None:
        raise NotFound("role", "role_id")
    _check_can_manage(session, actor, target, role)
    _check_holds_role(session, actor, role)
    old = None
    if replace_assignment_id is not None:
        old = session.get(RoleAssignment, replace_assignment_id)
        if old is None or old.user_id != target.id or not old.in_force(clock.now()):
            raise NotFound("active role assignment", "assignment_id")
        _check_can_manage(session, actor, target, old.role)
        if old.role_id == role.id:
            raise DomainError("same_role", f"{target.email} already has {role.display_name}; pick another role.",
                              "role_id")
    if any(a.role_id == role.id for a in active_assignments(session, target.id)):
        raise DomainError("already_assigned", f"{target.email} already has the {role.display_name} role.", "role_id")
    before = effective_permissions(session, target.id)
    if old is not None:
        old.is_active, old.ended_at = False, clock.now()
    assignment = RoleAssignment(user_id=target.id, role_id=role.id, assigned_by_id=actor.id, reason=reason,
                                expires_at=expires_at, notify_user=notify_user)
    if target.is_test:
        assignment.is_test = True
    session.add(assignment)
    if not target.is_staff:
        target.is_staff = True
    session.flush()
    after = effective_permissions(session, target.id)
    action = "role_changed" if old is not None else "role_assigned"
    _log(session, action, target, actor, old_perms=before, new_perms=after, reason=reason,
         old_role=old.role if old else None, new_role=role)
    audit.record(session, f"rbac.{action}", actor=actor, target=target, reason=reason,
                 before={"role": old.role.name if old else None, "permissions": sorted(before)},
                 after={"role": role.name, "expires_at": expires_at.isoformat() if expires_at else None,
                        "notify_user": notify_user, "permissions": sorted(after)})
    if notify_user:
        queue_role_notice(session, actor, target, role, expires_at=expires_at, reason=reason,
                          replaced=old.role if old else None)
    return assignment


def revoke_role(session, actor, target, assignment_id: int, *, reason: str) -> RoleAssignment:
    reason = _require_reason(reason)
    assignment = session.get(RoleAssignment, assignment_id)
    if assignment is None or assignment.user_id != target.id or not assignment.in_force(clock.now()):
        raise NotFound("active role assignment", "assignment_id")
    _check_can_manage(session, actor, target, assignment.role)
    before = effective_permissions(session, target.id)
    assignment.is_active, assignment.ended_at = False, clock.now()
    session.flush()
    after = effective_permissions(session, target.id)
    _log(session, "role_revoked", target, actor, old_perms=before, new_perms=after, reason=reason,
         old_role=assignment.role)
    audit.record(session, "rbac.role_revoked", actor=actor, target=target, reason=reason,
                 before={"role": assignment.role.name, "permissions": sorted(before)},
                 after={"permissions": sorted(after)})
    return assignment


def grant_override(session, actor, target, permission: str, action: str, *, reason: str,
                   expires_at: datetime | None = None) -> PermissionOverride:
    """Add a grant or revoke override (logged as permission_override_granted)."""
    reason = _require_reason(reason)
    if permission not in ALL_PERMISSIONS:
        raise DomainError("unknown_permission", f"{permission!r} is not a permission.", "permission")
    if action not in ("grant", "revoke"):
        raise DomainError("invalid_action", "The override action is grant or revoke.", "action")
    _check_expiry(expires_at)
    _check_can_manage(session, actor, target)
    _check_holds(session, actor, permission, action)
    if any(o.permission == permission for o in active_overrides(session, target.id)):
        raise DomainError("override_exists", f"An override for {permission} is already in force; remove it first.",
                          "permission")
    before = effective_permissions(session, target.id)
    primary = _primary(active_assignments(session, target.id))
    override = PermissionOverride(
        user_id=target.id, permission=permission, action=action, expires_at=expires_at, reason=reason,
        granted_by_id=actor.id, role_assignment_id=primary.id if primary else None,
    )
    if target.is_test:
        override.is_test = True
    session.add(override)
    session.flush()
    after = effective_permissions(session, target.id)
    role = primary.role if primary else None
    _log(session, "permission_override_granted", target, actor, old_perms=before, new_perms=after,
         reason=reason, old_role=role, new_role=role, override=override.describe())
    audit.record(session, "rbac.permission_override_granted", actor=actor, target=target, reason=reason,
                 before={"permissions": sorted(before)}, after={"override": override.describe(),
                                                                "permissions": sorted(after)})
    return override


def remove_override(session, actor, target, override_id: int, *, reason: str) -> PermissionOverride:
    """End an override early (logged as permission_override_revoked)."""
    reason = _require_reason(reason)
    override = session.get(PermissionOverride, override_id)
    if override is None or override.user_id != target.id or not override.in_force(clock.now()):
        raise NotFound("active permission override", "override_id")
    _check_can_manage(session, actor, target)
    _check_holds(session, actor, override.permission, "change an override of")
    before = effective_permissions(session, target.id)
    override.is_active, override.ended_at = False, clock.now()
    session.flush()
    after = effective_permissions(session, target.id)
    primary = _primary(active_assignments(session, target.id))
    role = primary.role if primary else None
    _log(session, "permission_override_revoked", target, actor, old_perms=before, new_perms=after,
         reason=reason, old_role=role, new_role=role, override=override.describe())
    audit.record(session, "rbac.permission_override_revoked", actor=actor, target=target, reason=reason,
                 before={"override": override.describe(), "permissions": sorted(before)},
                 after={"permissions": sorted(after)})
    return override


def expire_due(session, at: datetime | None = None) -> dict[str, int]:
    """Deactivate assignments and overrides whose time is up; log each as the system."""
    at = at or clock.now()
    counts = {"role_expired": 0, "permission_override_expired": 0}
    due_assignments = session.scalars(
        select(RoleAssignment).where(RoleAssignment.is_active.is_(True), RoleAssignment.expires_at <= at)
        .order_by(RoleAssignment.expires_at, RoleAssignment.id)
        .options(lazyload(RoleAssignment.role))  # no outer join: PostgreSQL refuses FOR UPDATE on one
        .with_for_update(skip_locked=True)
    ).all()
    due_overrides = session.scalars(
        select(PermissionOverride).where(PermissionOverride.is_active.is_(True), PermissionOverride.expires_at <= at)
        .order_by(PermissionOverride.expires_at, PermissionOverride.id).with_for_update(skip_locked=True)
    ).all()
    for item in [*due_assignments, *due_overrides]:
        target = session.get(User, item.user_id)
        # "before" is what the stored rows granted until now, i.e. with this item still active.
        before = _permissions_with(session, target.id, at, include=item)
        item.is_active, item.ended_at = False, item.expires_at
        session.flush()
        after = effective_permissions(session, target.id, at)
        if isinstance(item, RoleAssignment):
            action = "role_expired"
            _log(session, action, target, None, old_perms=before, new_perms=after,
                 reason="Automatic expiration of temporary role", old_role=item.role)
        else:
            action = "permission_override_expired"
            primary = _primary(active_assignments(session, target.id, at))
            role = primary.role if primary else None
            _log(session, action, target, None, old_perms=before, new_perms=after,
                 reason="Automatic expiration of temporary override", old_role=role, new_role=role,
                 override=item.describe())
        audit.record(session, f"rbac.{action}", actor=None, target=target,
                     reason="Automatic expiration", before={"permissions": sorted(before)},
                     after={"permissions": sorted(after)})
        counts[action] += 1
    return counts


def _permissions_with(session, user_id: int, at: datetime, include) -> set[str]:
    """Effective permissions at `at` as if `include` were still in force."""
    assignments = active_assignments(session, user_id, at)
    overrides = active_overrides(session, user_id, at)
    if isinstance(include, RoleAssignment):
        assignments.append(include)
    else:
        overrides.append(include)
    return _combine(assignments, overrides)


def ensure_catalogue(session) -> None:
    """Load the permission catalogue and the system roles; idempotent."""
    existing = {p.name: p for p in session.scalars(select(Permission))}
    for name in ALL_PERMISSIONS:
        if name not in existing:
            existing[name] = Permission(name=name, category=category_of(name),
                                        description=name.split(".", 1)[1].replace("_", " "))
            session.add(existing[name])
    roles = {r.name: r for r in session.scalars(select(Role))}
    for spec in SYSTEM_ROLES:
        role = roles.get(spec["name"])
        if role is None:
            role = Role(name=spec["name"], is_system=True, hierarchy=spec["hierarchy"],
                        display_name=spec["display_name"], description=spec["description"])
            session.add(role)
        role.permissions = [existing[p] for p in spec["permissions"]]
    session.flush()


__all__ = ["CATEGORIES"]
