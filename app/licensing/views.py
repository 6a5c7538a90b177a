"""Staff screens: licenses list, issue form, license page (devices, upgrades, history, actions),
revoke (sudo), device replacement, app versions editor, stale devices.

Every action form works without JavaScript (post, redirect back with a message); with
HTMX it swaps the license's own block of the page, rendered from the same template.
"""
from __future__ import annotations

from datetime import datetime, time, timezone

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_active, sudo_required, user_can
from app.core import nav, sorting, testmode
from app.core.errors import DomainError
from app.core.pagination import Page, parse_limit
from app.core.forms import handle_form
from app.core.web import TEST_DATA_PARAM, csv_response, is_fragment_request, render, test_data_scope
from app.extensions import db
from app.licensing import activations, service, upgrades
from app.licensing.forms import (EligibilityForm, LicenseCreateForm, MaxActivationsForm, ReasonForm,
                                 ReplaceDeviceForm, VersionEditForm, VersionForm)
from app.licensing.models import LICENSE_STATUSES

bp = Blueprint("licensing", __name__)
nav.register("Licenses", "licensing.index", "licenses.view", order=40)
nav.register("App versions", "licensing.versions", "licenses.view", order=41)
nav.register("Stale devices", "licensing.stale_devices", "licenses.view", order=42)



def _license(license_id: int):
    lic = service.get_license(db.session, license_id)
    if lic.is_test:
        testmode.activate()  # staff work on test data is test data
    return lic


def _filters() -> service.LicenseFilters:
    args = request.args
    return service.LicenseFilters(status=args.get("status") or None, version=(args.get("version") or "").strip() or None,
                                  owner=(args.get("owner") or "").strip() or None,
                                  data=test_data_scope(args))


@bp.route("/admin/licenses")
@permission_required("licenses.view")
def index():
    filters, error, status = _filters(), None, 200
    cursor = request.args.get("cursor") or None
    sort = sorting.parse(None, service.SORTS, service.DEFAULT_SORT)
    try:
        sort = sorting.parse_or_default(request.args.get("sort"), service.SORTS, service.DEFAULT_SORT)
        limit = parse_limit(request.args.get("limit"), default=25)
        page = service.list_page(db.session, filters, limit, cursor, sort)
    except DomainError as err:
        page, error, status, limit = Page([], None, False), err.message, 422, 25
    next_url = None
    if page.has_more:
        next_url = url_for("licensing.index", status=filters.status, version=filters.version, owner=filters.owner,
                           include_test=TEST_DATA_PARAM[filters.data], sort=sort.param, cursor=page.next_cursor)
    block = "rows" if cursor and is_fragment_request() else "results"
    return render("licensing/index.html", block=block, status=status, filters=filters, page=page, error=error,
                  next_url=next_url, paged=bool(cursor), statuses=LICENSE_STATUSES, sort=sort,
                  counts=service.active_counts(db.session, [lic.id for lic in page.items]))


@bp.route("/admin/licenses/export.csv")
@permission_required("licenses.view")
def export():
    """The filtered, sorted list as CSV, streamed."""
    sort = sorting.parse_or_default(request.args.get("sort"), service.SORTS, service.DEFAULT_SORT)
    return csv_response("licenses.csv", ["license_key", "owner", "status", "purchased_version", "eligible_until",
                                         "max_activations", "price", "purchased_at", "world"],
                        service.export_rows(db.session, _filters(), sort))


@bp.route("/admin/licenses/new", methods=["GET", "POST"])
@permission_required("licenses.create")
def create():
    form = LicenseCreateForm()
    issued = []

    def issue():
        owner = service.owner_by_email(db.session, form.owner_email.data)
        expires = (datetime.combine(form.expires_at.data, time.min, tzinfo=timezone.utc)
                   if form.expires_at.data else None)
        issued.append(service.create_license(
            db.session, owner=owner, actor=current_user, purchase_price=form.purchase_price.data,
            purchased_version=form.purchased_version.data, eligible_until_version=form.eligible_until_version.data or None,
            max_activations=form.max_activations.data, status=form.status.data, expires_at=expires,
            reason=form.reason.data))

    if request.method == "GET":
        return render("licensing/new.html", form=form)
    return handle_form(form, issue, success=lambda _: url_for("licensing.detail", license_id=issued[0].id),
                       message=lambda _: f"License {issued[0].license_key} issued to {issued[0].owner.email}.",
                       again=lambda form, status: render("licensing/new.html", form=form, status=status))


def _context(lic, notice: str | None = None, **forms) -> dict:
    devices = activations.devices(db.session, lic.id)
    defaults = {
        "suspend_form": ReasonForm(prefix="suspend"), "reinstate_form": ReasonForm(prefix="reinstate"),
        "mark_active_form": ReasonForm(prefix="activate"),
        "max_form": MaxActivationsForm(prefix="max", max_activations=lic.max_activations),
        "eligibility_form": EligibilityForm(prefix="eligibility"),
    }
    defaults.update(forms)
    deactivate_forms = {d.id: forms.get(f"deactivate_{d.id}") or ReasonForm(prefix=f"d{d.id}")
                        for d in devices if d.status == "active"}
    return {"lic": lic, "devices": devices, "active": sum(d.status == "active" for d in devices),
            "upgrades": upgrades.upgrades_for(db.session, lic.id),
            "events": activations.recent_events(db.session, lic.id),
            "history": service.audit_history(db.session, lic), "deactivate_forms": deactivate_forms,
            "notice": notice, "sudo": sudo_active(), **defaults}


def _page(lic, status: int = 200, notice: str | None = None, **forms):
    if status == 200 and not is_fragment_request():
        flash(notice, "info")
        return redirect(url_for("licensing.detail", license_id=lic.id))
    return render("licensing/detail.html", block="license", status=status, **_context(lic, notice, **forms))


@bp.route("/admin/licenses/<int:license_id>")
@permission_required("licenses.view")
def detail(license_id: int):
    return render("licensing/detail.html", block="license", **_context(_license(license_id)))


def _action(license_id: int, form_name: str, form, call, notice: str):
    """An action of the license page: HTMX swaps the license's block, a plain POST goes back to the page."""
    lic = _license(license_id)
    return handle_form(form, lambda: call(lic, form), success=url_for("licensing.detail", license_id=lic.id),
                       message=notice, fragment=lambda _, text: _page(lic, notice=text),
                       again=lambda form, status: _page(lic, status, **{form_name: form}))


@bp.route("/admin/licenses/<int:license_id>/suspend", methods=["POST"])
@permission_required("licenses.suspend")
def suspend(license_id: int):
    return _action(license_id, "suspend_form", ReasonForm(prefix="suspend"), lambda lic, f: service.suspend(
        db.session, lic, actor=current_user, reason=f.reason.data), "License suspended.")


@bp.route("/admin/licenses/<int:license_id>/reinstate", methods=["POST"])
@permission_required("licenses.suspend")
def reinstate(license_id: int):
    return _action(license_id, "reinstate_form", ReasonForm(prefix="reinstate"), lambda lic, f: service.reinstate(
        db.session, lic, actor=current_user, reason=f.reason.data), "License reinstated.")


@bp.route("/admin/licenses/<int:license_id>/mark-active", methods=["POST"])
@permission_required("licenses.activate")
def mark_active(license_id: int):
    return _action(license_id, "mark_active_form", ReasonForm(prefix="activate"), lambda lic, f: service.mark_active(
        db.session, lic, actor=current_user, reason=f.reason.data), "License marked active.")


@bp.route("/admin/licenses/<int:license_id>/max-activations", methods=["POST"])
@permission_required("licenses.activate")
def change_max(license_id: int):
    return _action(license_id, "max_form", MaxActivationsForm(prefix="max"), lambda lic, f: service.change_max_activations(
        db.session, lic, f.max_activations.data, actor=current_user, reason=f.reason.data), "Max activations changed.")


@bp.route("/admin/licenses/<int:license_id>/eligibility", methods=["POST"])
@permission_required("licenses.create")
def extend_eligibility(license_id: int):
    return _action(license_id, "eligibility_form", EligibilityForm(prefix="eligibility"),
                   lambda lic, f: service.extend_eligibility(db.session, lic, f.eligible_until_version.data,
                                                             actor=current_user, reason=f.reason.data),
                   "Eligibility extended.")


def _revoke_page(lic, form, status: int = 200):
    return render("licensing/revoke.html", lic=lic, form=form, active=service.active_count(db.session, lic.id),
                  sudo=sudo_active(), status=status)


@bp.route("/admin/licenses/<int:license_id>/revoke")
@permission_required("licenses.revoke")
def revoke_confirm(license_id: int):
    """The confirmation page; it offers the sudo prompt first when the TOTP is not fresh."""
    return _revoke_page(_license(license_id), ReasonForm())


@bp.route("/admin/licenses/<int:license_id>/revoke", methods=["POST"])
@permission_required("licenses.revoke")
@sudo_required
def revoke(license_id: int):
    lic = _license(license_id)
    form = ReasonForm()
    return handle_form(form, lambda: service.revoke(db.session, lic, actor=current_user, reason=form.reason.data),
                       success=url_for("licensing.detail", license_id=lic.id),
                       message=f"License {lic.license_key} revoked: every device stops validating.",
                       again=lambda form, status: _revoke_page(lic, form, status))


@bp.route("/admin/licenses/<int:license_id>/devices/<int:activation_id>/deactivate", methods=["POST"])
@permission_required("licenses.deactivate")
def deactivate_device(license_id: int, activation_id: int):
    form = ReasonForm(prefix=f"d{activation_id}")
    return _action(license_id, f"deactivate_{activation_id}", form, lambda lic, f: activations.deactivate(
        db.session, lic, activation_id=activation_id, source="staff", actor=current_user, reason=f.reason.data),
        "Device deactivated.")


@bp.route("/admin/licenses/<int:license_id>/devices/<int:activation_id>/replace", methods=["GET", "POST"])
@permission_required("licenses.activate", "licenses.deactivate")
def replace_device(license_id: int, activation_id: int):
    lic = _license(license_id)
    old = activations.get_activation(db.session, lic, activation_id)
    form = ReplaceDeviceForm()
    device = {name: getattr(form, name).data or "" for name in activations.DEVICE_FIELDS}
    if request.method == "GET":
        return render("licensing/replace.html", lic=lic, old=old, form=form)
    return handle_form(form, lambda: activations.replace(db.session, lic, activation_id, form.new_fingerprint.data,
                                                         device, actor=current_user, reason=form.reason.data),
                       success=url_for("licensing.detail", license_id=lic.id),
                       message=f"{old.device_name or 'The device'} replaced.",
                       again=lambda form, status: render("licensing/replace.html", lic=lic, old=old, form=form,
                                                         status=status))


def _versions_page(form=None, status: int = 200, edit_forms: dict | None = None):
    rows = upgrades.list_versions(db.session)
    forms = {row.id: VersionEditForm(prefix=f"v{row.id}", obj=row) for row in rows}
    forms.update(edit_forms or {})
    return render("licensing/versions.html", block="versions", status=status, rows=rows,
                  form=form or VersionForm(prefix="new"), edit_forms=forms, can_edit=user_can("licenses.create"))


@bp.route("/admin/licenses/versions")
@permission_required("licenses.view")
def versions():
    return _versions_page()


@bp.route("/admin/licenses/versions/new", methods=["POST"])
@permission_required("licenses.create")
def create_version():
    form = VersionForm(prefix="new")
    return handle_form(form, lambda: upgrades.create_version(db.session, form.version.data, form.release_date.data,
                                                             form.notes.data, actor=current_user),
                       success=url_for("licensing.versions"), message="Version added.",
                       fragment=lambda *_: _versions_page(), again=lambda form, status: _versions_page(form, status))


@bp.route("/admin/licenses/versions/<int:version_id>", methods=["POST"])
@permission_required("licenses.create")
def edit_version(version_id: int):
    row = upgrades.get_version(db.session, version_id)
    form = VersionEditForm(prefix=f"v{row.id}")
    return handle_form(form, lambda: upgrades.update_version(db.session, row, form.release_date.data, form.notes.data,
                                                             actor=current_user),
                       success=url_for("licensing.versions"), message=f"Version {row.version} updated.",
                       fragment=lambda *_: _versions_page(),
                       again=lambda form, status: _versions_page(status=status, edit_forms={row.id: form}))


@bp.route("/admin/licenses/stale-devices")
@permission_required("licenses.view")
def stale_devices():
    error, status, rows, more = None, 200, [], False
    raw = request.args.get("days") or "30"
    data = test_data_scope(request.args)
    try:
        days = int(raw)
        if not 1 <= days <= 3650:
            raise ValueError
        rows, more = activations.stale_devices(db.session, days, data)
    except ValueError:
        days, error, status = raw, "Days is a whole number from 1 to 3650.", 422
    return render("licensing/stale.html", block="results", status=status, rows=rows, more=more, days=days,
                  data=data, error=error)
