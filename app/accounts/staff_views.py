"""Staff screens on the Users list: "New customer" and the CSV import of existing customers.

A customer made here gets the free tier at once and an email to choose a password; a test
staff persona makes test accounts (the two worlds). Both need users.edit_profile.
"""
from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.accounts import imports, service
from app.auth.guards import permission_required, user_can
from app.core.errors import DomainError
from app.core.forms import handle_form
from app.core.web import render
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
    if request.method == "GET":
        return render("accounts/staff_new_customer.html", form=form)

    def act():
        user = service.create_customer(db.session, email=form.email.data, name=form.name.data,
                                       external_id=form.external_id.data, actor=current_user)
        service.request_reset(db.session, user.email, purpose="welcome")
        return user

    def welcomed(user):
        flash(f"{user.email} is a customer now, on the free tier"
              f"{' (a test account)' if user.is_test else ''}; we emailed them a link to choose a password.",
              "success")
        return url_for("users.detail", user_id=user.id)

    return handle_form(form, act, success=welcomed,
                       again=lambda form, status: render("accounts/staff_new_customer.html", form=form,
                                                         status=status))


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
    if request.method == "GET":
        return render("accounts/staff_import.html", form=form)
    importing = request.form.get("action") == "import"
    outcome = {}

    def act():
        """Check (a dry run writes nothing) or import every row; a file with a bad row imports none."""
        try:
            text = outcome["text"] = _csv_text(form)
            if not importing:
                outcome["report"] = imports.dry_run(db.session, text)
                return []
            outcome["report"], created = imports.run(db.session, current_user, text)
        except DomainError as error:
            outcome["error"] = error.message
            raise
        if not created:  # nothing to import, or a refused row: the report says which
            raise DomainError("import_refused", "Nothing was imported: see the report.")
        return created

    def again(form, status):
        if "report" not in outcome:
            return render("accounts/staff_import.html", form=form, error=outcome.get("error"), status=status)
        report = outcome["report"]
        form.csv_text.data = outcome["text"]
        return render("accounts/staff_import.html", form=form, report=report, dry_run=not importing,
                      status=200 if report.ok else 422)

    def checked(created):
        if created:
            flash(f"Imported {len(created)} customers on the free tier.", "success")
            return url_for("users.index")
        report = outcome["report"]
        form.csv_text.data = outcome["text"]
        return render("accounts/staff_import.html", form=form, report=report, dry_run=True,
                      status=200 if report.ok else 422)

    return handle_form(form, act, success=checked, again=again)


@bp.app_context_processor
def _links():
    """The Users screen shows "New customer" and "Import" to those who may use them."""
    return {"may_create_customers": lambda: user_can("users.edit_profile")}
