"""Coupon screens: list, create, edit, (de)activate, rules, validation preview, redemptions, reversal."""
from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, user_can
from app.billing import subscriptions
from app.core import bounds, clock, nav
from app.core.errors import DomainError
from app.core.forms import Posted, form_errors, handle_form
from app.core.pagination import keyset_page, parse_limit
from app.core.requestinfo import client_ip, user_agent
from app.core.web import csv_response, include_test_data, render
from app.coupons import campaigns, coupon_list, coupons, redemption, rules, validation
from app.coupons.forms import CouponForm, PreviewForm, ReasonForm, RuleForm
from app.coupons.models import Coupon, Redemption
from app.extensions import db

bp = Blueprint("coupons", __name__, url_prefix="/admin/coupons")
nav.register("Coupons", "coupons.index", "coupons.view", order=40)

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def form_values(form) -> dict:
    return {name: value for name, value in form.data.items() if name != "csrf_token"}


def campaign_choices(form) -> None:
    form.campaign_id.choices = {"": "(no campaign)", **{str(c.id): c.name for c in campaigns.campaigns(db.session)}}


def fill_from(form, coupon: Coupon) -> None:
    for name in ("description", "coupon_type", "discount_type", "is_active", "is_stackable",
                 "requires_licensed_device", "tier_eligibility", "billing_cycles"):
        getattr(form, name).data = getattr(coupon, name)
    form.code.data = coupon.code
    form.discount_value.data = str(int(coupon.discount_value) if coupon.discount_type in ("credits", "months_free")
                                   else coupon.discount_value)
    form.max_uses.data = "" if coupon.max_uses is None else str(coupon.max_uses)
    form.max_uses_per_user.data = "" if coupon.max_uses_per_user is None else str(coupon.max_uses_per_user)
    form.min_purchase_amount.data = str(coupon.min_purchase_amount)
    form.valid_from.data = coupon.valid_from.strftime(DATETIME_LOCAL)
    form.valid_until.data = coupon.valid_until.strftime(DATETIME_LOCAL)
    form.campaign_id.data = str(coupon.campaign_id or "")


def _listed():
    """The list's filters from the URL and the statement they give."""
    q = (request.args.get("q") or "").strip()
    campaign_id = bounds.parse_id(request.args.get("campaign_id"), "campaign_id")
    state = request.args.get("state") or ""
    stmt = coupons.search(db.session, q or None, campaign_id, {"active": True, "inactive": False}.get(state))
    return q, campaign_id, state, stmt


@bp.get("")
@permission_required("coupons.view")
def index(status: int = 200):
    q, campaign_id, state, stmt = _listed()
    sort = coupon_list.sort_for(request.args.get("sort"))
    page = coupon_list.page(db.session, stmt, sort, parse_limit(request.args.get("limit"), 50),
                            request.args.get("cursor") or None)
    block = "rows" if request.args.get("cursor") else "table"  # a filter or sort change swaps the whole table
    return render("coupons/index.html", block=block, page=page, q=q, campaign_id=campaign_id, state=state,
                  sort=sort, campaigns=campaigns.campaigns(db.session), status=status)


@bp.get("/export.csv")
@permission_required("coupons.view")
def export():
    """Every coupon of the filtered, sorted list, streamed."""
    _, _, _, stmt = _listed()
    return csv_response(f"coupons-{clock.now():%Y%m%d}.csv", coupon_list.HEADER,
                        coupon_list.rows(db.session, stmt, coupon_list.sort_for(request.args.get("sort"))))


def _listing_refused(form, status):
    for message in form_errors(form):
        flash(message, "error")
    return index(status=status)


@bp.post("/bulk-deactivate")
@permission_required("coupons.edit")
def bulk_deactivate():
    """Deactivate the ticked coupons at once (a leaked batch of codes), each audited with the reason."""
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit() and len(i) < 19]
    return handle_form(Posted(), lambda: coupons.deactivate_many(db.session, current_user, ids,
                                                                 request.form.get("reason")),
                       success=url_for("coupons.index", state="inactive"), again=_listing_refused,
                       message=lambda done: f"{done} coupon(s) deactivated.")


def _coupon_form(coupon, form, act, message):
    """Create or edit: the form page, refused with the field errors (422)."""
    if request.method == "GET":
        return render("coupons/form.html", form=form, coupon=coupon)
    return handle_form(form, lambda: act(form_values(form)),
                       success=lambda saved: url_for("coupons.detail", coupon_id=saved.id), message=message,
                       again=lambda form, status: render("coupons/form.html", form=form, coupon=coupon,
                                                         status=status))


@bp.route("/new", methods=["GET", "POST"])
@permission_required("coupons.create")
def new():
    form = CouponForm()
    campaign_choices(form)
    if request.method == "GET" and request.args.get("campaign_id"):
        form.campaign_id.data = request.args["campaign_id"]
    return _coupon_form(None, form, lambda values: coupons.create(db.session, current_user, values),
                        lambda coupon: f"Coupon {coupon.code} created.")


@bp.route("/<int:coupon_id>/edit", methods=["GET", "POST"])
@permission_required("coupons.edit")
def edit(coupon_id: int):
    coupon = coupons.get(db.session, coupon_id)
    form = CouponForm()
    campaign_choices(form)
    form.code.data = coupon.code  # the code never changes
    if request.method == "GET":
        fill_from(form, coupon)
    return _coupon_form(coupon, form, lambda values: coupons.update(db.session, current_user, coupon, values),
                        f"Coupon {coupon.code} saved.")


@bp.post("/<int:coupon_id>/active")
@permission_required("coupons.edit")
def set_active(coupon_id: int):
    coupon = coupons.get(db.session, coupon_id)
    active = request.form.get("active") == "1"
    page = url_for("coupons.detail", coupon_id=coupon.id)
    return handle_form(None, lambda: coupons.set_active(db.session, current_user, coupon, active,
                                                        request.form.get("reason")),
                       success=page, again=page, message=f"Coupon {coupon.code} {'activated' if active else 'deactivated'}.")


@bp.post("/<int:coupon_id>/delete")
@permission_required("coupons.delete")
def delete(coupon_id: int):
    coupon = coupons.get(db.session, coupon_id)
    code = coupon.code

    def again(form, status):
        return _detail(coupons.get(db.session, coupon_id), status=status)

    return handle_form(None, lambda: coupons.delete(db.session, current_user, coupon, request.form.get("reason")),
                       success=url_for("coupons.index"), again=again, message=f"Coupon {code} deleted.")


def _detail(coupon: Coupon, *, rule_form=None, preview_form=None, preview=None, status=200, block=None):
    include_test = include_test_data()
    stmt = redemption.listing(coupon_id=coupon.id, include_test=include_test)
    page = keyset_page(db.session, stmt, Redemption, parse_limit(request.args.get("limit"), 20),
                       request.args.get("cursor"))
    return render("coupons/detail.html", block=block, coupon=coupon, page=page, rules=rules,
                  rule_form=rule_form or RuleForm(formdata=None), preview_form=preview_form or PreviewForm(formdata=None),
                  preview=preview, reason_form=ReasonForm(formdata=None), examples=rules.EXAMPLES,
                  can_edit=user_can("coupons.edit"), can_reverse=user_can("coupons.approve_redemption"),
                  status=status)


@bp.get("/<int:coupon_id>")
@permission_required("coupons.view")
def detail(coupon_id: int):
    return _detail(coupons.get(db.session, coupon_id), block="redemptions")


@bp.post("/<int:coupon_id>/rules")
@permission_required("coupons.edit")
def add_rule(coupon_id: int):
    coupon = coupons.get(db.session, coupon_id)
    form = RuleForm()

    def act():
        typed = rules.from_form(form.rule_type.data, {"domains": form.domains.data,
                                                      "min_balance": form.min_balance.data, "days": form.days.data})
        raw = form.rule_value.data if typed is None or (typed == {} and (form.rule_value.data or "").strip()) else typed
        try:
            return rules.add(db.session, current_user, coupon, form.rule_type.data, raw)
        except DomainError as error:
            if raw is typed and error.field == "rule_value":  # point at the typed field
                error.field = rules.FORM_FIELDS.get(form.rule_type.data, "rule_value")
            raise

    return handle_form(form, act, success=url_for("coupons.detail", coupon_id=coupon.id), message="Rule added.",
                       again=lambda form, status: _detail(coupon, rule_form=form, status=status))


@bp.post("/<int:coupon_id>/rules/<int:rule_id>/delete")
@permission_required("coupons.edit")
def remove_rule(coupon_id: int, rule_id: int):
    coupon = coupons.get(db.session, coupon_id)
    page = url_for("coupons.detail", coupon_id=coupon.id)
    return handle_form(None, lambda: rules.remove(db.session, current_user, coupon, rule_id), success=page,
                       again=page, message="Rule removed.")


@bp.post("/<int:coupon_id>/preview")
@permission_required("coupons.view")
def preview(coupon_id: int):
    """The validation service itself, for a customer and purchase the staff member enters; writes nothing.
    200 even with a field error: HTMX swaps only 2xx answers into the page."""
    coupon = coupons.get(db.session, coupon_id)
    form = PreviewForm()
    return handle_form(form, lambda: validation.preview(db.session, coupon, form.email.data, form_values(form)),
                       success=lambda result: _detail(coupon, preview_form=form, preview=result, block="preview"),
                       again=lambda form, status: _detail(coupon, preview_form=form, block="preview"))


@bp.post("/redemptions/<int:redemption_id>/reverse")
@permission_required("coupons.approve_redemption")
def reverse(redemption_id: int):
    row = redemption.get(db.session, redemption_id)
    form = ReasonForm()
    page = url_for("coupons.detail", coupon_id=row.coupon_id)
    return handle_form(form, lambda: redemption.reverse(db.session, current_user, row, form.reason.data),
                       success=page, again=page,
                       message=f"Redemption {row.id} reversed; its budget and use were given back.")


@bp.app_context_processor
def _subscription_coupons():
    """For billing's subscription page, which includes coupons/_subscription_coupons.html."""
    return {"subscription_redemptions": lambda subscription_id: redemption.for_subscription(db.session,
                                                                                          subscription_id)}


@bp.post("/subscriptions/<int:subscription_id>/apply")
@permission_required("subscriptions.edit")
def apply_to_subscription(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    page = url_for("billing.subscription", subscription_id=sub.id) + "#coupons"

    def told(row):
        if row.status == "failed":
            flash(f"{row.coupon.code} was not applied ({row.failure_code}): {redemption.public_message(row)}",
                  "error")
        elif row.status == "pending":
            flash(f"{row.coupon.code} applied: {row.discount_amount} off the next invoice.", "info")
        else:
            flash(f"{row.coupon.code} applied.", "info")
        return page

    return handle_form(None, lambda: redemption.apply_to_subscription(
        db.session, current_user, sub, request.form.get("code"), request.form.get("reason"), ip_address=client_ip(),
        user_agent=user_agent()), success=told, again=page)
