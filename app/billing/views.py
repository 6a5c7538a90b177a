"""Subscriptions screens: the list, one subscription's page (timeline and actions, with the
proration preview), and the staff actions, each permission-checked and audited."""
from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, request_permission_required, sudo_required, user_can
from app.billing import changes, history, packs, payments, refunds, subscriptions, tiers
from app.billing.forms import (CancelForm, ChangeTierForm, CreateSubscriptionForm, ReasonForm, RefundForm, SellPackForm,
                               choices)
from app.billing.models import STATUSES, RefundRequest, Subscription
from app.core import nav, sorting
from app.core.errors import DomainError
from app.core.labels import label
from app.core.pagination import parse_limit
from app.core.forms import form_errors, handle_form
from app.core.web import csv_response, render, test_data_scope
from app.core.money import usd
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

    def act():
        user = changes.find_user(db.session, form.email.data)
        return changes.create(db.session, current_user, user, tier_name=form.tier.data,
                              cycle=form.billing_cycle.data, reason=form.reason.data)

    return handle_form(form, act, success=lambda sub: url_for("billing.subscription", subscription_id=sub.id),
                       message=lambda sub: f"Subscription created for {sub.user.email}.",
                       again=url_for("billing.subscriptions"))


def _page(sub, status: int = 200, **forms):
    change = forms.get("change_form") or ChangeTierForm()
    change.to_tier.choices = choices((t.name, f"{t.display_name} ({usd(t.monthly_price)}/month)")
                                     for t in tiers.all_tiers(db.session) if t.is_active and t.id != sub.tier_id)
    sell = SellPackForm()
    sell.pack_id.choices = choices((p.id, f"{p.name}: {p.credits:,} credits for {usd(p.price)}")
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
    """The proration quote, as a fragment under the change form (or the whole page); writes nothing."""
    sub = subscriptions.get(db.session, subscription_id)
    form = ChangeTierForm()

    def again(form, status):
        form.reason.data = ""
        return _page(sub, status=status, change_form=form, block="change")

    def quoted(quote):
        form.reason.data = ""
        return _page(sub, change_form=form, quote=quote, block="change")

    return handle_form(form, lambda: changes.preview_change(db.session, sub, request.form.get("to_tier"),
                                                            request.form.get("effective_date")),
                       success=quoted, again=again, validate=False)


def _again(sub, key: str | None = None):
    """A refused subscription action: its message flashed at the top and on its form, the page re-rendered."""
    def again(form, status):
        for message in form_errors(form):
            flash(message, "error")
        return _page(subscriptions.get(db.session, sub.id), status=status, **({key: form} if key else {}))
    return again


def _here(sub) -> str:
    return url_for("billing.subscription", subscription_id=sub.id)


@bp.post("/subscriptions/<int:subscription_id>/change")
@permission_required("subscriptions.edit")
def change(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    form = ChangeTierForm()
    return handle_form(form, lambda: changes.change_tier(
        db.session, current_user, sub, request.form.get("to_tier"), effective=request.form.get("effective_date"),
        reason=request.form.get("reason")), success=_here(sub), again=_again(sub, "change_form"), validate=False,
        message=lambda event: f"Changed from {label(event.from_tier)} to {label(event.to_tier)} ({label(event.status).lower()})."
        + (f" Invoice for {event.net_charge}." if event.net_charge else ""))


@bp.post("/subscriptions/<int:subscription_id>/cancel")
@permission_required("subscriptions.cancel")
def cancel(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    form = CancelForm()
    later = form.when.data != "now"
    return handle_form(form, lambda: changes.cancel(db.session, current_user, sub, at_period_end=later,
                                                    reason=form.reason.data),
                       success=_here(sub), again=_again(sub, "cancel_form"),
                       message="Cancellation scheduled for the end of the period." if later
                       else "Subscription cancelled.")


def _reason_action(subscription_id: int, action, message: str):
    sub = subscriptions.get(db.session, subscription_id)
    form = ReasonForm()
    return handle_form(form, lambda: action(db.session, current_user, sub, reason=form.reason.data),
                       success=_here(sub), again=_again(sub), message=message)


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

    def told(payment):
        if payment.status == "succeeded":
            flash(f"Payment of {usd(payment.amount)} succeeded.", "info")
        else:
            flash(f"The payment failed: {payment.failure_message or payment.failure_code}.", "error")
        return _here(sub)

    return handle_form(None, lambda: changes.retry_open_invoice(db.session, current_user, sub), success=told,
                       again=_again(sub))


def _refund_form(subscription_id: int, act, message):
    """The refund form of a subscription's payment, done by `act` (refund, or ask an admin)."""
    sub = subscriptions.get(db.session, subscription_id)
    form = RefundForm()

    def refund():
        payment = refunds.get_payment(db.session, form.payment_id.data)
        if payment.subscription_id != sub.id:
            raise DomainError("resource_missing", "No such payment on this subscription.", "payment_id", status=404)
        return act(db.session, current_user, payment, form.amount.data, reason=form.reason.data)

    return handle_form(form, refund, success=_here(sub), again=_again(sub, "refund_form"), message=message)


@bp.post("/subscriptions/<int:subscription_id>/refund")
@permission_required("subscriptions.refund")
@sudo_required
def refund(subscription_id: int):
    return _refund_form(subscription_id, refunds.request_refund, lambda result: (
        f"A refund of {usd(result.amount)} is above {usd(refunds.threshold())}: it waits for an admin's approval."
        if isinstance(result, RefundRequest) else f"Refunded {usd(result.amount)}."))


@bp.post("/subscriptions/<int:subscription_id>/refund-request")
@request_permission_required("subscriptions.view")
def refund_request(subscription_id: int):
    """Support's "Request refund": queued for an admin, whatever the amount (no sudo: no money moves).
    Read-only roles cannot ask (request_permission_required)."""
    return _refund_form(subscription_id, refunds.ask_for_refund, lambda result: (
        f"Refund of {usd(result.amount)} requested: an admin approves or declines it from the approvals queue."))


@bp.post("/subscriptions/<int:subscription_id>/sell-pack")
@permission_required("subscriptions.edit")
def sell_pack(subscription_id: int):
    sub = subscriptions.get(db.session, subscription_id)
    return handle_form(None, lambda: packs.purchase(db.session, current_user, sub.user, request.form.get("pack_id"),
                                                    staff=True),
                       success=_here(sub), again=_again(sub),
                       message=lambda purchase: f"Sold {purchase.pack.name}: {purchase.credits:,} bonus credits added.")
