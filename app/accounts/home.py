"""The customer's own page /account/: plan, balance, usage, licenses and devices, invoices, API keys."""
from __future__ import annotations

from flask import flash, redirect, request, url_for

from app.accounts import overview as service
from app.accounts.forms import ConfirmForm
from app.accounts.guards import current_customer, customer_required
from app.accounts.views import bp
from app.core.errors import DomainError
from app.core.forms import Posted, handle_form
from app.core.web import render
from app.extensions import db
from app.api.models import KEY_TYPES


def _page(status: int = 200, **extra):
    user = current_customer()
    return render("accounts/home.html", user=user, form=ConfirmForm(), key_types=KEY_TYPES,
                  **service.overview(db.session, user), **extra, status=status)


@bp.get("/")
@customer_required
def home():
    return _page()


class _Button(Posted):
    """A button of the page: its token checked as ConfirmForm checks it, a refusal kept by field."""

    def validate_on_submit(self) -> bool:
        if ConfirmForm().validate_on_submit():
            return True
        self.form_errors.append("Your form expired; please try again.")
        return False


def _refused(form: _Button, status: int):
    """The page again, the refusal at its top (a 404 of an id that is not the customer's included)."""
    return _page(status, error=form.error["message"], key_error=form.error["field"])


def _refused_status(error: DomainError) -> int:
    return error.status if error.status >= 400 else 422


def _button(action, success):
    return handle_form(_Button(), action, success=success, again=_refused, refused_status=_refused_status)


def _home(message: str):
    def go(_):
        flash(message, "success")
        return redirect(url_for("accounts.home"))

    return go


@bp.post("/licenses/<int:license_id>/devices/<int:activation_id>/deactivate")
@customer_required
def deactivate_device(license_id: int, activation_id: int):
    return _button(lambda: service.deactivate_device(db.session, current_customer(), license_id, activation_id),
                   _home("The device is deactivated: its seat is free."))


@bp.post("/keys")
@customer_required
def create_key():
    def create():
        return service.create_key(db.session, current_customer(), name=request.form.get("name", ""),
                                  key_type=request.form.get("key_type", "sandbox"))

    # The key is shown in this answer only.
    return _button(create, lambda made: _page(new_key=made[1], new_key_row=made[0]))


@bp.post("/keys/<int:key_id>/revoke")
@customer_required
def revoke_key(key_id: int):
    return _button(lambda: service.revoke_key(db.session, current_customer(), key_id), _home("The key is revoked."))
