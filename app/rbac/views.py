"""Role screens and the access forms of a user's page (assign, change, revoke, overrides).

Every change needs roles.assign and sudo mode; the service decides the rest (hierarchy,
self, held permissions) and its message is shown on the form with a 422. A change to a
test account runs in test mode, so everything it writes is test data.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_required, user_can
from app.core import nav, testmode
from app.core.forms import handle_form
from app.core.web import is_fragment_request, render
from app.extensions import db
from app.rbac import roles as roles_service
from app.rbac import service
from app.rbac.catalogue import ALL_PERMISSIONS, CATEGORIES
from app.rbac.forms import AssignRoleForm, ChangeRoleForm, CustomRoleForm, OverrideForm, ReasonForm, SelectChoice
from app.rbac.log_views import bp as logs_bp
from app.rbac.panel import access_context
from app.users import service as users

bp = Blueprint("rbac", __name__)
bp.register_blueprint(logs_bp)
nav.register("Roles", "rbac.roles", "roles.view", order=80)


def _target(user_id: int):
    target = users.get_user(db.session, user_id)
    if target.is_test:
        testmode.activate()
    return target


def _attempt(target, form, action, notice: str, **form_on_error):
    """An access form of a user's page: HTMX swaps the panel, a plain POST goes back to the page."""
    return handle_form(form, action, success=url_for("users.detail", user_id=target.id), message=notice,
                       fragment=lambda result, text: _panel(target, notice=text),
                       again=lambda form, status: _panel(target, status, **form_on_error))


def _panel(target, status: int = 200, notice: str | None = None, **forms):
    if status == 200 and not is_fragment_request():
        flash(notice, "info")
        return redirect(url_for("users.detail", user_id=target.id))
    context = access_context(db.session, current_user, target, notice=notice, **forms)
    return render("users/detail.html", block="access", status=status, **context)


@bp.route("/admin/users/<int:user_id>/roles", methods=["POST"])
@permission_required("roles.assign")
@sudo_required
def assign_role(user_id: int):
    target = _target(user_id)
    form = AssignRoleForm(prefix="assign")
    return _attempt(target, form, lambda: service.assign_role(
        db.session, current_user, target, form.role_id.data, reason=form.reason.data,
        expires_at=form.expires_at.data, notify_user=form.notify_user.data), "Role assigned.", assign_form=form)


@bp.route("/admin/users/<int:user_id>/roles/<int:assignment_id>/change", methods=["POST"])
@permission_required("roles.assign")
@sudo_required
def change_role(user_id: int, assignment_id: int):
    target = _target(user_id)
    prefix = f"change{assignment_id}"
    form = ChangeRoleForm(prefix=prefix)
    return _attempt(target, form, lambda: service.assign_role(
        db.session, current_user, target, form.role_id.data, reason=form.reason.data,
        expires_at=form.expires_at.data, notify_user=form.notify_user.data, replace_assignment_id=assignment_id),
        "Role changed.", row_form=(prefix, form))


@bp.route("/admin/users/<int:user_id>/roles/<int:assignment_id>/revoke", methods=["POST"])
@permission_required("roles.assign")
@sudo_required
def revoke_role(user_id: int, assignment_id: int):
    target = _target(user_id)
    prefix = f"revoke{assignment_id}"
    form = ReasonForm(prefix=prefix)
    return _attempt(target, form, lambda: service.revoke_role(db.session, current_user, target, assignment_id,
                                                              reason=form.reason.data),
                    "Role revoked.", row_form=(prefix, form))


@bp.route("/admin/users/<int:user_id>/overrides", methods=["POST"])
@permission_required("roles.assign")
@sudo_required
def grant_override(user_id: int):
    target = _target(user_id)
    form = OverrideForm(prefix="override")
    return _attempt(target, form, lambda: service.grant_override(
        db.session, current_user, target, form.permission.data, form.action.data, reason=form.reason.data,
        expires_at=form.expires_at.data), "Override saved.", override_form=form)


@bp.route("/admin/users/<int:user_id>/overrides/<int:override_id>/remove", methods=["POST"])
@permission_required("roles.assign")
@sudo_required
def remove_override(user_id: int, override_id: int):
    target = _target(user_id)
    prefix = f"remove{override_id}"
    form = ReasonForm(prefix=prefix)
    return _attempt(target, form, lambda: service.remove_override(db.session, current_user, target, override_id,
                                                                  reason=form.reason.data),
                    "Override removed.", row_form=(prefix, form))


def _roles_page(form=None, status: int = 200, notice: str | None = None):
    roles = roles_service.all_roles(db.session)
    can_create = user_can("roles.create") and service.is_super_admin(db.session, current_user.id)
    if form is None:
        form = CustomRoleForm(formdata=None, prefix="role")
    form.permissions.choices = [SelectChoice(p) for p in ALL_PERMISSIONS]
    return render("rbac/roles.html", block="roles_body", status=status, roles=roles, categories=CATEGORIES,
                  held={r.id: set(r.permission_names) for r in roles}, form=form, can_create=can_create,
                  notice=notice)


@bp.route("/admin/roles")
@permission_required("roles.view")
def roles():
    """Every role with its permission matrix (7 categories x roles)."""
    return _roles_page()


@bp.route("/admin/roles", methods=["POST"])
@permission_required("roles.create")
def create_role():
    form = CustomRoleForm(prefix="role")
    return handle_form(form, lambda: roles_service.create_custom_role(
        db.session, current_user, name=form.name.data, display_name=form.display_name.data,
        description=form.description.data or "", hierarchy=form.hierarchy.data,
        permissions=list(form.permissions.data or [])), success=url_for("rbac.roles"),
        message=lambda role: f"Role {form.name.data.strip().lower()} created.",
        fragment=lambda role, text: _roles_page(notice="Role created."),
        again=lambda form, status: _roles_page(form, status))
