"""Account actions on the customer page: one route per action, each behind its own permission;
a refusal re-renders the page with the message and what was typed, nothing changed."""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_required
from app.core.forms import Posted, handle_form
from app.core.web import render
from app.customers import actions, service
from app.customers.views import page
from app.extensions import db

bp = Blueprint("customer_actions", __name__, url_prefix="/admin/customers")


def _act(user, action: str, act, message):
    """An action of the customer page: refused, the page re-opens with the message and what was typed."""
    posted = Posted()

    def again(posted, status):
        return page(user, None, status=status, action_error={"action": action, **(posted.error or {})},
                    typed=posted.data)

    return handle_form(posted, act, success=url_for("customers.detail", user_id=user.id), message=message,
                       again=again)


@bp.post("/<int:user_id>/profile")
@permission_required("users.view", "users.edit_profile")
def edit_profile(user_id: int):
    user = service.get_customer(db.session, user_id)
    return _act(user, "profile", lambda: actions.edit_profile(
        db.session, current_user, user, first_name=request.form.get("first_name"),
        last_name=request.form.get("last_name"), reason=request.form.get("reason")), "Profile saved.")


def _status(user_id: int, action: str):
    user = service.get_customer(db.session, user_id)
    return _act(user, action, lambda: actions.change_status(db.session, current_user, user, action,
                                                            request.form.get("reason")),
                lambda _: f"{user.email} is now {user.status}.")


@bp.post("/<int:user_id>/suspend")
@permission_required("users.view", "users.suspend")
def suspend(user_id: int):
    return _status(user_id, "suspend")


@bp.post("/<int:user_id>/unsuspend")
@permission_required("users.view", "users.unsuspend")
def unsuspend(user_id: int):
    return _status(user_id, "unsuspend")


@bp.post("/<int:user_id>/ban")
@permission_required("users.view", "users.ban")
def ban(user_id: int):
    return _status(user_id, "ban")


@bp.post("/<int:user_id>/unban")
@permission_required("users.view", "users.ban")
def unban(user_id: int):
    return _status(user_id, "unban")


@bp.get("/<int:user_id>/erase")
@permission_required("users.view", "users.delete")
def erase_confirm(user_id: int):
    return render("customers/erase.html", customer=service.get_customer(db.session, user_id), error=None, typed={})


@bp.post("/<int:user_id>/erase")
@permission_required("users.view", "users.delete")
@sudo_required
def erase(user_id: int):
    user = service.get_customer(db.session, user_id)
    return handle_form(Posted(), lambda: actions.erase(db.session, current_user, user,
                                                       confirm_email=request.form.get("confirm_email"),
                                                       reason=request.form.get("reason")),
                       success=url_for("users.index"),
                       message=f"Customer #{user.id} was erased: personal data replaced, financial records kept.",
                       again=lambda posted, status: render("customers/erase.html", customer=user, error=posted.error,
                                                           typed=posted.data, status=status))


@bp.get("/<int:user_id>/view-as")
@permission_required("users.view", "users.impersonate")
def view_as(user_id: int):
    user = service.get_customer(db.session, user_id)
    context = actions.view_as(db.session, current_user, user)
    db.session.commit()
    return render("customers/view_as.html", customer=user, **context)
