"""The customer's own page /account/: plan, balance, usage, licenses and devices, invoices, API keys."""
from __future__ import annotations

from flask import flash, redirect, request, url_for

from app.accounts import overview as service
from app.accounts.forms import ConfirmForm
from app.accounts.guards import current_customer, customer_required
from app.accounts.views import bp
from app.core.errors import DomainError
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


@bp.post("/licenses/<int:license_id>/devices/<int:activation_id>/deactivate")
@customer_required
def deactivate_device(license_id: int, activation_id: int):
    if not ConfirmForm().validate_on_submit():
        return _page(422, error="Your form expired; please try again.")
    try:
        service.deactivate_device(db.session, current_customer(), license_id, activation_id)
    except DomainError as error:
        db.session.rollback()
        return _page(error.status if error.status >= 400 else 422, error=error.message)
    db.session.commit()
    flash("The device is deactivated: its seat is free.", "success")
    return redirect(url_for("accounts.home"))


@bp.post("/keys")
@customer_required
def create_key():
    if not ConfirmForm().validate_on_submit():
        return _page(422, error="Your form expired; please try again.")
    try:
        key, plain = service.create_key(db.session, current_customer(), name=request.form.get("name", ""),
                                        key_type=request.form.get("key_type", "sandbox"))
    except DomainError as error:
        db.session.rollback()
        return _page(error.status if error.status >= 400 else 422, error=error.message, key_error=error.field)
    db.session.commit()
    return _page(new_key=plain, new_key_row=key)


@bp.post("/keys/<int:key_id>/revoke")
@customer_required
def revoke_key(key_id: int):
    if not ConfirmForm().validate_on_submit():
        return _page(422, error="Your form expired; please try again.")
    try:
        service.revoke_key(db.session, current_customer(), key_id)
    except DomainError as error:
        db.session.rollback()
        return _page(error.status if error.status >= 400 else 422, error=error.message)
    db.session.commit()
    flash("The key is revoked.", "success")
    return redirect(url_for("accounts.home"))
