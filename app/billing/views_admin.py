"""Billing back-office screens: tiers editor, credit packs editor, failed-payments queue,
refund approvals and revenue figures."""
from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_required
from app.billing import changes, history, metrics, packs, refunds, subscriptions, tiers
from app.billing.forms import DecisionForm, PackForm, TierForm
from app.billing.models import CreditPack, RefundRequest, SubscriptionTier
from app.core import nav
from app.core.errors import DomainError
from app.core.forms import handle_form
from app.core.web import include_test_data, render
from app.core.money import usd
from app.extensions import db

bp = Blueprint("billing_admin", __name__, url_prefix="/admin/billing")
nav.register("Failed payments", "billing_admin.failed_payments", "subscriptions.view", order=31)
nav.register("Tiers", "billing_admin.tiers_list", "subscriptions.view", order=33)
nav.register("Credit packs", "billing_admin.packs_list", "subscriptions.view", order=34)
nav.register("Revenue", "billing_admin.revenue", "analytics.view_revenue", order=35)


@bp.get("/tiers")
@permission_required("subscriptions.view")
def tiers_list():
    return render("billing/tiers.html", tiers=tiers.all_tiers(db.session))


def _tier_form(tier: SubscriptionTier) -> TierForm:
    form = TierForm(data={"display_name": tier.display_name, "monthly_price": str(tier.monthly_price),
                          "annual_price": "" if tier.annual_price is None else str(tier.annual_price),
                          "monthly_credits": str(tier.monthly_credits), "max_rollover": str(tier.max_rollover),
                          "features": json.dumps(tier.features, indent=2, sort_keys=True),
                          "is_active": tier.is_active})
    return form


@bp.route("/tiers/<int:tier_id>", methods=["GET", "POST"])
@permission_required("subscriptions.edit")
@sudo_required
def tier_edit(tier_id: int):
    tier = db.session.get(SubscriptionTier, tier_id) or abort(404, "No such tier.")
    if request.method == "GET":
        return _tier_page(tier, _tier_form(tier))
    form = TierForm()

    def act():
        try:
            features = json.loads(form.features.data or "{}")
        except ValueError:
            raise DomainError("invalid_features", "The features are not valid JSON.", "features") from None
        return tiers.update_tier(db.session, current_user, tier, display_name=form.display_name.data,
                                 monthly_price=form.monthly_price.data, annual_price=form.annual_price.data,
                                 monthly_credits=form.monthly_credits.data, max_rollover=form.max_rollover.data,
                                 features=features, is_active=form.is_active.data, reason=form.reason.data)

    return handle_form(form, act, success=url_for("billing_admin.tiers_list"), message=f"Tier {tier.name} saved.",
                       again=lambda form, status: _tier_page(tier, form, status))


def _tier_page(tier: SubscriptionTier, form: TierForm, status: int = 200):
    return render("billing/tier_edit.html", tier=tier, form=form, feature_keys=list(tiers.FEATURE_TYPES),
                  status=status)


@bp.get("/packs")
@permission_required("subscriptions.view")
def packs_list():
    return render("billing/packs.html", packs=packs.all_packs(db.session), form=PackForm())


@bp.route("/packs/new", methods=["POST"], defaults={"pack_id": None})
@bp.route("/packs/<int:pack_id>", methods=["GET", "POST"])
@permission_required("subscriptions.edit")
@sudo_required
def pack_edit(pack_id: int | None):
    pack = (db.session.get(CreditPack, pack_id) or abort(404, "No such pack.")) if pack_id else None
    if request.method == "GET":
        form = PackForm(data={"name": pack.name, "credits": str(pack.credits), "price": str(pack.price),
                              "is_active": pack.is_active})
        return render("billing/pack_edit.html", pack=pack, form=form)
    form = PackForm()

    def again(form, status):
        if pack is None:
            return render("billing/packs.html", packs=packs.all_packs(db.session), form=form, status=status)
        return render("billing/pack_edit.html", pack=pack, form=form, status=status)

    return handle_form(form, lambda: packs.save_pack(db.session, current_user, pack, name=form.name.data,
                                                     credits=form.credits.data, price=form.price.data,
                                                     is_active=form.is_active.data, reason=form.reason.data),
                       success=url_for("billing_admin.packs_list"), again=again,
                       message=lambda saved: f"Credit pack {saved.name} saved.")


@bp.get("/failed-payments")
@permission_required("subscriptions.view")
def failed_payments():
    rows = history.failed_payments(db.session, include_test_data())
    return render("billing/failed_payments.html", rows=rows)


@bp.post("/failed-payments/<int:subscription_id>/retry")
@permission_required("subscriptions.edit")
def failed_payment_retry(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)

    def told(payment):
        if payment.status == "succeeded":
            flash(f"{sub.user.email}: payment of {usd(payment.amount)} succeeded; dunning is over.", "info")
        else:
            flash(f"{sub.user.email}: the payment failed ({payment.failure_message or payment.failure_code}).", "error")
        return url_for("billing_admin.failed_payments")

    return handle_form(None, lambda: changes.retry_open_invoice(db.session, current_user, sub), success=told,
                       again=url_for("billing_admin.failed_payments"))


@bp.get("/refund-requests")
@permission_required("subscriptions.refund")
def refund_requests():
    """Refund requests are decided in the one approvals queue (refunds and credit grants)."""
    return redirect(url_for("approvals.index", kind="refund", include_test=request.args.get("include_test")))


@bp.post("/refund-requests/<int:request_id>/<decision>")
@permission_required("subscriptions.refund")
@sudo_required
def refund_decide(request_id: int, decision: str):
    refund_request = db.session.get(RefundRequest, request_id) or abort(404, "No such refund request.")
    form = DecisionForm()
    if decision not in ("approve", "reject"):
        abort(400, "Unknown decision.")

    def act():
        if decision == "approve":
            return f"Refund of {usd(refunds.approve(db.session, current_user, refund_request, form.note.data).amount)} " \
                   "approved and sent."
        refunds.reject(db.session, current_user, refund_request, form.note.data)
        return "Refund request rejected."

    queue = url_for("approvals.index", kind="refund")
    return handle_form(form, act, success=queue, again=queue, message=lambda text: text)


@bp.get("/revenue")
@permission_required("analytics.view_revenue")
def revenue():
    figures = metrics.revenue(db.session, include_test=include_test_data())
    return render("billing/revenue.html", r=figures, include_test=include_test_data())
