"""Staff screens on the Users list: "New customer" and the CSV import of existing customers.

A customer made here gets the free tier at once and an email to choose a password; a test
staff persona makes test accounts (the two worlds). Both need users.edit_profile.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.accounts import imports, service
from app.auth.guards import permission_required, user_can
from app.core.errors import DomainError
from app.core.web import apply_domain_error, render
from app.extensions import db

bp = Blueprint("customers_admin", __name__)


class NewCustomerForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    name = StringField("Name", validators=[Length(max=160)])
    external_id = StringField("External id (optional: the id in your other systems)", validators=[Length(max=255)])


class ImportForm(FlaskForm):
    csv_text = TextAreaField("Or paste the CSV", validators=[Length(max=imports.MAX_BYTES)])


@bp.route("/admin/customers/new", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def new_customer():
    form = NewCustomerForm()
    if form.validate_on_submit():
        try:
            user = service.create_customer(db.session, email=form.email.data, name=form.name.data,
                                           external_id=form.external_id.data, actor=current_user)
            service.request_reset(db.session, user.email, purpose="welcome")
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
            return render("accounts/staff_new_customer.html", form=form, status=409 if error.status == 409 else 422)
        db.session.commit()
        flash(f"{user.email} is a customer now, on the free tier"
              f"{' (a test account)' if user.is_test else ''}; we emailed them a link to choose a password.", "success")
        return redirect(url_for("users.detail", user_id=user.id))
    return render("accounts/staff_new_customer.html", form=form, status=422 if form.errors else 200)


def _csv_text(form: ImportForm) -> str:
    upload = request.files.get("csv_file")
    if upload is not None and upload.filename:
        raw = upload.read(imports.MAX_BYTES + 1)
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DomainError("not_utf8", "Save the file as UTF-8 CSV.", "csv_file") from None
    return form.csv_text.data or ""


@bp.route("/admin/customers/import", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def import_customers():
    form = ImportForm()
    if not form.validate_on_submit():
        return render("accounts/staff_import.html", form=form, status=422 if form.errors else 200)
    try:
        text = _csv_text(form)
        if request.form.get("action") == "import":
            report, created = imports.run(db.session, current_user, text)
        else:
            report, created = imports.dry_run(db.session, text), []
    except DomainError as error:
        db.session.rollback()
        return render("accounts/staff_import.html", form=form, error=error.message, status=422)
    if created:
        db.session.commit()
        flash(f"Imported {len(created)} customers on the free tier.", "success")
        return redirect(url_for("users.index"))
    db.session.rollback()
    form.csv_text.data = text
    return render("accounts/staff_import.html", form=form, report=report, dry_run=request.form.get("action") != "import",
                  status=200 if report.ok else 422)


@bp.app_context_processor
def _links():
    """The Users screen shows "New customer" and "Import" to those who may use them."""
    return {"may_create_customers": lambda: user_can("users.edit_profile")}
