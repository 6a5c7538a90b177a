"""The approvals screen: refund and credit grant requests in one queue; approve or decline
(a reason is required to decline) through each kind's own service, which audits the decision."""
from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user

from app.approvals import queue
from app.auth.guards import permission_required, sudo_required
from app.billing import refunds
from app.billing.forms import DecisionForm
from app.billing.models import RefundRequest
from app.core import nav
from app.core.forms import handle_form
from app.core.money import usd
from app.core.web import include_test_data, render
from app.credits import grants
from app.extensions import db

bp = Blueprint("approvals", __name__, url_prefix="/admin/approvals")


def _pending_count() -> int:
    return queue.pending_count(db.session, include_test_data())


nav.register("Approvals", "approvals.index", "credits.view_balance", order=95, count=_pending_count)


@bp.get("")
@permission_required("credits.view_balance")
def index():
    kind = request.args.get("kind")
    kind = kind if kind in queue.KINDS else None
    items = queue.pending(db.session, current_user, kind=kind, include_test=include_test_data())
    return render("approvals/index.html", items=items, kind=kind, form=DecisionForm(),
                  threshold=refunds.threshold())


def _queue() -> str:
    kind = request.args.get("kind")
    return url_for("approvals.index", kind=kind if kind in queue.KINDS else None)


@bp.post("/refund/<int:request_id>/<any(approve, decline):decision>")
@permission_required("subscriptions.refund")
@sudo_required
def decide_refund(request_id: int, decision: str):
    refund_request = db.session.get(RefundRequest, request_id) or abort(404, "No such refund request.")
    form = DecisionForm()

    def act():
        if decision == "approve":
            row = refunds.approve(db.session, current_user, refund_request, form.note.data)
            return f"Refund of {usd(row.amount)} approved and sent."
        refunds.reject(db.session, current_user, refund_request, form.note.data)
        return "Refund request declined."

    return handle_form(form, act, success=_queue(), again=_queue(), message=lambda text: text)


@bp.post("/credits/<int:request_id>/<any(approve, decline):decision>")
@permission_required("credits.grant")
def decide_grant(request_id: int, decision: str):
    form = DecisionForm()

    def act():
        if decision == "approve":
            result = grants.approve(db.session, current_user, request_id, form.note.data)
            return f"Approved: {result['request'].amount:,} credits granted to {result['request'].user.email}."
        declined = grants.reject(db.session, current_user, request_id, form.note.data)
        return f"Declined the request of {declined.amount:,} credits for {declined.user.email}."

    return handle_form(form, act, success=_queue(), again=_queue(), message=lambda text: text)
