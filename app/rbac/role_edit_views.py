"""Edit and delete a custom role (roles.edit, roles.delete): a page per role; refusals re-render it."""
from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_required
from app.core.forms import Posted, handle_form
from app.core.web import render
from app.extensions import db
from app.rbac import role_edits
from app.rbac.catalogue import CATEGORIES
from app.rbac.models import Role

bp = Blueprint("rbac_roles", __name__, url_prefix="/admin/roles")


def _page(role: Role, error: dict | None = None, typed=None, status: int = 200):
    return render("rbac/role_edit.html", role=role, categories=CATEGORIES, error=error, typed=typed,
                  chosen=set(typed.getlist("permissions")) if typed else set(role.permission_names), status=status)


def _role(role_id: int) -> Role:
    return db.session.get(Role, role_id) or abort(404, "No such role.")


@bp.get("/<int:role_id>/edit")
@permission_required("roles.view", "roles.edit")
def edit_form(role_id: int):
    return _page(_role(role_id))


def _again(role_id: int, keep_typed: bool = True):
    return lambda posted, status: _page(_role(role_id), posted.error, posted.data if keep_typed else None,
                                        status=status)


@bp.post("/<int:role_id>/edit")
@permission_required("roles.view", "roles.edit")
@sudo_required
def edit(role_id: int):
    return handle_form(Posted(), lambda: role_edits.update_custom_role(
        db.session, current_user, role_id, display_name=request.form.get("display_name"),
        description=request.form.get("description"), permissions=request.form.getlist("permissions"),
        reason=request.form.get("reason")), success=url_for("rbac.roles"), again=_again(role_id),
        message=lambda role: f"Role {role.display_name} saved.")


@bp.post("/<int:role_id>/delete")
@permission_required("roles.view", "roles.delete")
@sudo_required
def delete(role_id: int):
    name = _role(role_id).display_name
    return handle_form(Posted(), lambda: role_edits.delete_custom_role(db.session, current_user, role_id,
                                                                       request.form.get("reason")),
                       success=url_for("rbac.roles"), again=_again(role_id, keep_typed=False),
                       message=f"Role {name} deleted.")
