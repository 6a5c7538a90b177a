"""Edit and delete a custom role (roles.edit, roles.delete): a page per role; refusals re-render it."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_required
from app.core.errors import DomainError
from app.core.web import render
from app.extensions import db
from app.rbac import role_edits
from app.rbac.catalogue import CATEGORIES
from app.rbac.models import Role

bp = Blueprint("rbac_roles", __name__, url_prefix="/admin/roles")


def _page(role: Role, error: DomainError | None = None, typed=None, status: int = 200):
    return render("rbac/role_edit.html", role=role, categories=CATEGORIES, error=error, typed=typed,
                  chosen=set(typed.getlist("permissions")) if typed else set(role.permission_names), status=status)


def _role(role_id: int) -> Role:
    return db.session.get(Role, role_id) or abort(404, "No such role.")


@bp.get("/<int:role_id>/edit")
@permission_required("roles.view", "roles.edit")
def edit_form(role_id: int):
    return _page(_role(role_id))


@bp.post("/<int:role_id>/edit")
@permission_required("roles.view", "roles.edit")
@sudo_required
def edit(role_id: int):
    try:
        role = role_edits.update_custom_role(db.session, current_user, role_id, display_name=request.form.get("display_name"),
                                             description=request.form.get("description"),
                                             permissions=request.form.getlist("permissions"),
                                             reason=request.form.get("reason"))
    except DomainError as error:
        db.session.rollback()
        return _page(_role(role_id), error, request.form, status=error.status if error.status != 400 else 422)
    db.session.commit()
    flash(f"Role {role.display_name} saved.", "info")
    return redirect(url_for("rbac.roles"))


@bp.post("/<int:role_id>/delete")
@permission_required("roles.view", "roles.delete")
@sudo_required
def delete(role_id: int):
    role = _role(role_id)
    name = role.display_name
    try:
        role_edits.delete_custom_role(db.session, current_user, role_id, request.form.get("reason"))
    except DomainError as error:
        db.session.rollback()
        return _page(_role(role_id), error, None, status=error.status if error.status != 400 else 422)
    db.session.commit()
    flash(f"Role {name} deleted.", "info")
    return redirect(url_for("rbac.roles"))
