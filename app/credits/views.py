"""Credits screens: the system credits page and a user's credit page (balance, grants and
deductions with approvals, allocations, usage chart, ledger, BYOK keys). Thin: parse, call the
service, render. Pricing and margins have their own blueprint (views_pricing.py).

Permissions: the system page needs analytics.view_usage; a user's page credits.view_balance
(and credits.view_history for the ledger); grants credits.grant (capped per role), staff
deductions credits.deduct, BYOK key changes users.edit_profile; rebuilding a day's summaries
(a job that rewrites rows) credits.adjust_expiration, a write no read-only role holds.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, request_permission_required, user_can
from app.core import audit, clock, jobs, nav
from app.core.errors import DomainError
from app.core.forms import back, handle_form
from app.core.web import csv_response, include_test_data, render
from app.credits import analytics, balances, byok, grants, ledger, ledger_list, pricing, summaries
from app.credits.forms import DecisionForm, DeductForm, GrantForm, RebuildForm, VendorKeyForm, provider_choices
from app.extensions import db
from app.users.models import User

bp = Blueprint("credits", __name__, url_prefix="/admin/credits")
nav.register("Credits", "credits.system", "analytics.view_usage", order=40)


def _range():
    try:
        start = ledger.parse_day(request.args.get("start"), "start")
        end = ledger.parse_day(request.args.get("end"), "end")
        return ledger.date_range(start, end, clock.now().date()), None
    except DomainError as error:
        return ledger.date_range(None, None, clock.now().date()), error.message


@bp.get("/")
@permission_required("analytics.view_usage")
def system():
    (start, end), range_error = _range()
    with_test = include_test_data()
    q = (request.args.get("q") or "").strip()
    pending = grants.pending_requests(db.session)
    return render("credits/system.html", block="search_results" if "q" in request.args else None,
                  q=q, found=analytics.find_users(db.session, q) if q else [], start=start, end=end,
                  range_error=range_error, with_test=with_test,
                  overview=analytics.system(db.session, start, end, with_test),
                  spenders=analytics.top_spenders(db.session, start, end, with_test),
                  pending=pending, decision_form=DecisionForm(),
                  approvable={r.id for r in pending if grants.can_approve(db.session, current_user, r)},
                  runs=summaries.last_runs(db.session), rebuild_form=RebuildForm())


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "No such user.")
    return user


def _ledger_filters() -> dict:
    return {"type_": request.args.get("type") or None, "kind": request.args.get("kind") or None,
            "since": request.args.get("start") or None, "until": request.args.get("end") or None}


def _user_page(user: User, grant_form=None, deduct_form=None, key_form=None, status: int = 200):
    filters = _ledger_filters()
    ledger_error = None
    page = None
    sort = ledger_list.parse_sort(request.args.get("sort"))
    if user_can("credits.view_history"):
        try:
            page = ledger_list.page(db.session, user.id, ledger_list.Filters.parse(request.args), sort, 25,
                                    request.args.get("cursor") or None)
        except DomainError as error:
            ledger_error = error.message
            page = ledger_list.page(db.session, user.id, ledger_list.Filters(), sort, 25, None)
    today = clock.now().date()
    start, end = ledger.date_range(None, None, today)
    usage = ledger.usage_stats(db.session, user.id, start, end)
    view = balances.get_balance(db.session, user.id)
    keys = byok.keys_for(db.session, user.id)
    pending = grants.pending_requests(db.session, user.id)
    if key_form is None:
        key_form = VendorKeyForm(formdata=None)
    key_form.provider_id.choices = provider_choices(pricing.providers(db.session))
    return render("credits/user.html", block="ledger", status=status, user=user, balance=view,
                  tier=balances.tier_of(db.session, user.id), page=page, filters=filters, ledger_error=ledger_error,
                  sort=sort,
                  kinds=ledger.ALLOCATION_SOURCES + ledger.DEDUCTION_TYPES, usage=usage,
                  chart={"labels": [d["date"] for d in usage["by_day"]],
                         "credits": [d["credits"] for d in usage["by_day"]]},
                  allocations=ledger.transactions(db.session, user.id, limit=10, type_="allocation").items,
                  pending=pending,
                  approvable={r.id for r in pending if grants.can_approve(db.session, current_user, r)},
                  cap=grants.cap_credits(db.session, current_user) if user_can("credits.grant") else None,
                  # Only the submitted form reads the request: the others start empty.
                  grant_form=grant_form or GrantForm(formdata=None),
                  deduct_form=deduct_form or DeductForm(formdata=None), keys=keys,
                  key_form=key_form, decision_form=DecisionForm())


@bp.get("/users/<int:user_id>")
@permission_required("credits.view_balance")
def user(user_id: int):
    return _user_page(_user_or_404(user_id))


def _expiry(day) -> datetime | None:
    return datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc) if day else None


def _credit_form(target, form, page_key: str, act):
    """Grant, grant request and deduct: `act` does it and returns the flash message."""
    return handle_form(form, act, success=url_for("credits.user", user_id=target.id), message=lambda text: text,
                       again=lambda form, status: _user_page(target, **{page_key: form}, status=status))


@bp.post("/users/<int:user_id>/grant")
@permission_required("credits.grant")
def grant(user_id: int):
    target = _user_or_404(user_id)
    form = GrantForm()

    def act():
        result = grants.grant(db.session, current_user, target.id, form.amount.data, form.reason.data,
                              _expiry(form.expires_on.data))
        if result["status"] == "pending_approval":
            return (f"{form.amount.data:,} credits is above your cap of {result['cap']:,}: an approval request "
                    "was sent to the administrators.")
        return f"Granted {form.amount.data:,} credits to {target.email}."

    return _credit_form(target, form, "grant_form", act)


@bp.post("/users/<int:user_id>/grant-request")
@request_permission_required("credits.view_balance")
def grant_request(user_id: int):
    """"Request credits" for staff without credits.grant: queued for an administrator."""
    target = _user_or_404(user_id)
    form = GrantForm()

    def act():
        grants.request_grant(db.session, current_user, target.id, form.amount.data, form.reason.data)
        return f"Asked an administrator to grant {form.amount.data:,} credits to {target.email}."

    return _credit_form(target, form, "grant_form", act)


@bp.post("/users/<int:user_id>/deduct")
@permission_required("credits.deduct")
def deduct(user_id: int):
    target = _user_or_404(user_id)
    form = DeductForm()

    def act():
        grants.staff_deduct(db.session, current_user, target.id, form.amount.data, form.reason.data)
        return f"Deducted {form.amount.data:,} credits from {target.email}."

    return _credit_form(target, form, "deduct_form", act)


@bp.post("/requests/<int:request_id>/<any(approve, reject):decision>")
@permission_required("credits.grant")
def decide(request_id: int, decision: str):
    form = DecisionForm()

    def act():
        if decision == "approve":
            result = grants.approve(db.session, current_user, request_id, form.note.data)
            return f"Approved: {result['request'].amount:,} credits granted to {result['request'].user.email}."
        request_ = grants.reject(db.session, current_user, request_id, form.note.data)
        return f"Rejected the request of {request_.amount:,} credits for {request_.user.email}."

    back_to = back(url_for("credits.system"))
    return handle_form(form, act, success=back_to, message=lambda text: text, again=back_to)


def _expiry_day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        raise DomainError("invalid_date", "Give the expiry as a date (YYYY-MM-DD), or leave it empty for none.",
                          "expires_on") from None


@bp.post("/requests/<int:request_id>/expiry")
@permission_required("credits.adjust_expiration")
def request_expiry(request_id: int):
    raw = (request.form.get("expires_on") or "").strip()

    def act():
        req = grants.set_request_expiry(db.session, current_user, request_id, _expiry(_expiry_day(raw)),
                                        request.form.get("reason"))
        return f"The request of {req.amount:,} credits now {'expires ' + raw if raw else 'never expires'}."

    back_to = back(url_for("credits.system"))
    return handle_form(None, act, success=back_to, message=lambda text: text, again=back_to)


@bp.get("/users/<int:user_id>/ledger.csv")
@permission_required("credits.view_balance", "credits.view_history")
def ledger_csv(user_id: int):
    """The user's ledger as the screen shows it (filters and sort of the URL), streamed; a bad
    filter answers 422 with its message."""
    target = _user_or_404(user_id)
    filters, sort = ledger_list.Filters.parse(request.args), ledger_list.parse_sort(request.args.get("sort"))
    return csv_response(f"ledger-{target.id}.csv", ledger_list.HEADER,
                        ledger_list.rows(db.session, target.id, filters, sort))


@bp.post("/users/<int:user_id>/vendor-keys")
@permission_required("users.edit_profile")
def save_vendor_key(user_id: int):
    target = _user_or_404(user_id)
    form = VendorKeyForm()
    form.provider_id.choices = provider_choices(pricing.providers(db.session))

    def again(form, status):
        form.api_key.data = None  # never echo a key back into the page
        return _user_page(target, key_form=form, status=status)

    return handle_form(form, lambda: byok.store(db.session, current_user, target.id, form.provider_id.data,
                                                form.api_key.data),
                       success=url_for("credits.user", user_id=target.id), again=again,
                       message=lambda key: f"Saved the {key.provider.display_name} key ending in {key.last_four}.")


@bp.post("/users/<int:user_id>/vendor-keys/<int:key_id>/delete")
@permission_required("users.edit_profile")
def delete_vendor_key(user_id: int, key_id: int):
    target = _user_or_404(user_id)
    page = url_for("credits.user", user_id=target.id)
    return handle_form(None, lambda: byok.remove(db.session, current_user, target.id, key_id), success=page,
                       again=page, message="Vendor key removed.")


@bp.post("/summaries/rebuild")
@permission_required("analytics.view_usage", "credits.adjust_expiration")
def rebuild_summaries():
    """Audited and committed first, then the job is queued (it reads the committed day)."""
    form = RebuildForm()

    def queued(day: str):
        record = jobs.enqueue("credits-daily-summaries", "app.credits.jobs:build_days", day,
                              requested_by=current_user)
        flash(f"Summaries for {day}: {record.status}.", "info" if record.status != "failed" else "error")
        return url_for("credits.system")

    def act():
        day = form.day.data.isoformat()
        audit.record(db.session, "credits.summaries_rebuild_requested", actor=current_user,
                     target_type="credit_summary_runs", target_id=day)
        return day

    return handle_form(form, act, success=queued, again=url_for("credits.system"))
