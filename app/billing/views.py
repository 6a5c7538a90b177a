"""Subscriptions screens: the list, one subscription's page (timeline and actions, with the
proration preview), and the staff actions, each permission-checked and audited."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, request_permission_required, sudo_required, user_can
from app.billing import changes, history, packs, payments, refunds, subscriptions, tiers
from app.billing.forms import (CancelForm, ChangeTierForm, CreateSubscriptionForm, ReasonForm, RefundForm, SellPackForm,
                               choices)
from app.billing.models import STATUSES, RefundRequest, Subscription
from app.core import nav, sorting
from app.core.errors import DomainError
from app.core.pagination import parse_limit
from app.core.web import apply_domain_error, csv_response, render, test_data_scope
from app.extensions import db

bp = Blueprint("billing", __name__, url_prefix="/admin/billing")
nav.register("Subscriptions", "billing.subscriptions", "subscriptions.view", order=30)


@bp.get("/subscriptions", endpoint="subscriptions")
@permission_required("subscriptions.view")
def subscriptions_list():
    args = request.args
    scope = test_data_scope(args)
    tier, status, q = args.get("tier") or None, args.get("status") or None, (args.get("q") or "").strip() or None
    stmt = history.list_stmt(tier=tier, status=status, scope=scope, q=q)
    sort = sorting.parse_or_default(args.get("sort"), history.SORTS, history.DEFAULT_SORT)
    page = sorting.page(db.session, stmt, history.SORTS[sort.key], Subscription.id, sort,
                        parse_limit(args.get("limit"), 25), args.get("cursor"))
    filters = {"tier": tier or "", "status": status or "", "scope": scope, "q": q or ""}
    block = "rows" if args.get("cursor") else "table"  # a filter change re-renders the headers too
    return render("billing/subscriptions.html", block=block, page=page, filters=filters, statuses=STATUSES,
                  tiers=tiers.all_tiers(db.session), scopes=history.SCOPES, create_form=_create_form(), sort=sort)


@bp.get("/subscriptions/export.csv")
@permission_required("subscriptions.view")
def subscriptions_export():
    """The filtered, sorted list as CSV, streamed."""
    args = request.args
    scope = test_data_scope(args)
    stmt = history.list_stmt(tier=args.get("tier") or None, status=args.get("status") or None, scope=scope,
                             q=(args.get("q") or "").strip() or None)
    sort = sorting.parse_or_default(args.get("sort"), history.SORTS, history.DEFAULT_SORT)
    rows = ([s.id, s.user.email, s.tier.name, s.status, s.billing_cycle, s.current_period_end.isoformat(),
             str(s.tier.price_for(s.billing_cycle)), s.stripe_customer_id or "", "test" if s.is_test else "live"]
            for s in sorting.stream(db.session, stmt, history.SORTS[sort.key], Subscription.id, sort))
    return csv_response("subscriptions.csv", ["id", "email", "tier", "status", "cycle", "period_end", "price",
                                              "stripe_customer", "world"], rows)



def _create_form(form=None):
    form = form or CreateSubscriptionForm()
    form.tier.choices = choices((t.name, t.display_name) for t in tiers.all_tiers(db.session) if t.is_active)
    return form


@bp.post("/subscriptions/new")
@permission_required("subscriptions.create")
def create():
    form = _create_form(CreateSubscriptionForm())
    if form.validate_on_submit():
        try:
            user = changes.find_user(db.session, form.email.data)
            sub = changes.create(db.session, current_user, user, tier_name=form.tier.data,
                                 cycle=form.billing_cycle.data, reason=form.reason.data)
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
        else:
            flash(f"Subscription created for {user.email}.", "info")
            return redirect(url_for("billing.subscription", subscription_id=sub.id))
    flash("; ".join(e for errs in form.errors.values() for e in errs) or "Check the form.", "error")
    return redirect(url_for("billing.subscriptions"))


def _page(sub, status: int = 200, **forms):
    change = forms.get("change_form") or ChangeTierForm()
    change.to_tier.choices = choices((t.name, f"{t.display_name} ({t.monthly_price}/month)")
                                     for t in tiers.all_tiers(db.session) if t.is_active and t.id != sub.tier_id)
    sell = SellPackForm()
    sell.pack_id.choices = choices((p.id, f"{p.name}: {p.credits:,} credits for {p.price}")
                                   for p in packs.all_packs(db.session, active_only=True))
    requests = refunds.for_subscription(db.session, sub.id)
    return render("billing/subscription.html", block=forms.get("block"), status=status, sub=sub,
                  timeline=history.timeline(db.session, sub), payments=payments.for_subscription(db.session, sub),
                  open_invoice=history.open_invoice(db.session, sub), change_form=change,
                  cancel_form=forms.get("cancel_form") or CancelForm(), reason_form=ReasonForm(),
                  refund_form=forms.get("refund_form") or RefundForm(), sell_form=sell, quote=forms.get("quote"),
                  refund_requests=requests, purchases=packs.purchases_for(db.session, sub.user_id),
                  features=sub.tier.features, can=user_can)


@bp.get("/subscriptions/<int:subscription_id>")
@permission_required("subscriptions.view")
def subscription(subscription_id: int):
    return _page(subscriptions.get(db.session, subscription_id))


@bp.post("/subscriptions/<int:subscription_id>/preview")
@permission_required("subscriptions.edit")
def preview(subscription_id: int):
    """The proration quote, as a fragment under the change form (or the whole page)."""
    sub = subscriptions.get(db.session, subscription_id)
    form = ChangeTierForm()
    quote = None
    try:
        quote = changes.preview_change(db.session, sub, request.form.get("to_tier"), request.form.get("effective_date"))
    except DomainError as error:
        apply_domain_error(form, error)
    form.reason.data = ""
    return _page(sub, status=200 if quote else 422, change_form=form, quote=quote, block="change")


def _done(sub, message: str):
    flash(message, "info")
    return redirect(url_for("billing.subscription", subscription_id=sub.id))


def _failed(sub, error: DomainError, **forms):
    db.session.rollback()
    flash(error.message, "error")
    return _page(subscriptions.get(db.session, sub.id), status=error.status if error.status < 500 else 422, **forms)


@bp.post("/subscriptions/<int:subscription_id>/change")
@permission_required("subscriptions.edit")
def change(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    form = ChangeTierForm()
    try:
        event = changes.change_tier(db.session, current_user, sub, request.form.get("to_tier"),
                                    effective=request.form.get("effective_date"), reason=request.form.get("reason"))
    except DomainError as error:
        apply_domain_error(form, error)
        return _failed(sub, error, change_form=form)
    invoice_note = f" Invoice for {event.net_charge}." if event.net_charge else ""
    return _done(sub, f"Changed from {event.from_tier} to {event.to_tier} ({event.status}).{invoice_note}")


@bp.post("/subscriptions/<int:subscription_id>/cancel")
@permission_required("subscriptions.cancel")
def cancel(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    form = CancelForm()
    if not form.validate_on_submit():
        return _page(sub, status=422, cancel_form=form)
    try:
        changes.cancel(db.session, current_user, sub, at_period_end=form.when.data != "now", reason=form.reason.data)
    except DomainError as error:
        return _failed(sub, error, cancel_form=form)
    return _done(sub, "Cancellation scheduled for the end of the period." if form.when.data != "now"
                 else "Subscription cancelled.")


def _reason_action(subscription_id: int, action, message: str):
    sub = subscriptions.get(db.session, subscription_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(form.reason.errors[0] if form.reason.errors else "Say why.", "error")
        return _page(sub, status=422)
    try:
        action(db.session, current_user, sub, reason=form.reason.data)
    except DomainError as error:
        return _failed(sub, error)
    return _done(sub, message)


@bp.post("/subscriptions/<int:subscription_id>/reactivate")
@permission_required("subscriptions.reactivate")
def reactivate(subscription_id: int):
    return _reason_action(subscription_id, changes.reactivate, "Subscription reactivated.")


@bp.post("/subscriptions/<int:subscription_id>/pause")
@permission_required("subscriptions.edit")
def pause(subscription_id: int):
    return _reason_action(subscription_id, changes.pause, "Subscription paused.")


@bp.post("/subscriptions/<int:subscription_id>/retry")
@permission_required("subscriptions.edit")
def retry(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    try:
        payment = changes.retry_open_invoice(db.session, current_user, sub)
    except DomainError as error:
        return _failed(sub, error)
    if payment.status == "succeeded":
        return _done(sub, f"Payment of {payment.amount} succeeded.")
    flash(f"The payment failed: {payment.failure_message or payment.failure_code}.", "error")
    return redirect(url_for("billing.subscription", subscription_id=sub.id))


def _refund_form(subscription_id: int, act):
    """The refund form of a subscription's payment, done by `act` (refund, or ask an admin)."""
    sub = subscriptions.get(db.session, subscription_id)
    form = RefundForm()
    if not form.validate_on_submit():
        return sub, None, _page(sub, status=422, refund_form=form)
    try:
        payment = refunds.get_payment(db.session, form.payment_id.data)
        if payment.subscription_id != sub.id:
            raise DomainError("resource_missing", "No such payment on this subscription.", "payment_id", status=404)
        return sub, act(db.session, current_user, payment, form.amount.data, reason=form.reason.data), None
    except DomainError as error:
        apply_domain_error(form, error)
        return sub, None, _failed(sub, error, refund_form=form)


@bp.post("/subscriptions/<int:subscription_id>/refund")
@permission_required("subscriptions.refund")
@sudo_required
def refund(subscription_id: int):
    sub, result, refused = _refund_form(subscription_id, refunds.request_refund)
    if refused is not None:
        return refused
    if isinstance(result, RefundRequest):
        return _done(sub, f"A refund of {result.amount} is above {refunds.threshold()}: it waits for an admin's approval.")
    return _done(sub, f"Refunded {result.amount}.")


@bp.post("/subscriptions/<int:subscription_id>/refund-request")
@request_permission_required("subscriptions.view")
def refund_request(subscription_id: int):
    """Support's "Request refund": queued for an admin, whatever the amount (no sudo: no money moves).
    Read-only roles cannot ask (request_permission_required)."""
    sub, result, refused = _refund_form(subscription_id, refunds.ask_for_refund)
    if refused is not None:
        return refused
    return _done(sub, f"Refund of {result.amount} requested: an admin approves or declines it from the refund queue.")


@bp.post("/subscriptions/<int:subscription_id>/sell-pack")
@permission_required("subscriptions.edit")
def sell_pack(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    try:
        purchase = packs.purchase(db.session, current_user, sub.user, request.form.get("pack_id"), staff=True)
    except DomainError as error:
        return _failed(sub, error)
    return _done(sub, f"Sold {purchase.pack.name}: {purchase.credits:,} bonus credits added.")

