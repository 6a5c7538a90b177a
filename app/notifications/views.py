"""Outbox screen: what the product sent, or would have sent, to whom."""
from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth.guards import permission_required
from app.core import audit, nav
from app.core.pagination import keyset_page, parse_limit
from app.core.forms import handle_form
from app.core.web import include_test_data, render
from app.extensions import db
from app.notifications import service
from app.notifications.models import STATUSES, OutboxMessage

bp = Blueprint("notifications", __name__, url_prefix="/admin/outbox")
nav.register("Outbox", "notifications.outbox", "users.view", order=80)


@bp.get("")
@permission_required("users.view")
def outbox():
    status_filter = request.args.get("status") if request.args.get("status") in STATUSES else None
    stmt = select(OutboxMessage)
    if status_filter:
        stmt = stmt.where(OutboxMessage.status == status_filter)
    if not include_test_data():
        stmt = stmt.where(OutboxMessage.is_test.is_(False))
    page = keyset_page(db.session, stmt, OutboxMessage, parse_limit(request.args.get("limit"), 50),
                       request.args.get("cursor"))
    return render("notifications/outbox.html", block="rows", page=page, status_filter=status_filter, statuses=STATUSES,
                  smtp=service.smtp_configured(), retrying=service.retrying_count(db.session, include_test_data()))


@bp.get("/<int:message_id>")
@permission_required("users.view")
def message(message_id: int):
    msg = db.session.get(OutboxMessage, message_id) or abort(404, "No such message.")
    return render("notifications/message.html", msg=msg)


@bp.post("/<int:message_id>/retry")
@permission_required("users.edit_profile")
def retry(message_id: int):
    msg = db.session.get(OutboxMessage, message_id) or abort(404, "No such message.")
    before = msg.status

    def act():
        service.retry_now(db.session, msg)
        audit.record(db.session, "notifications.retry", actor=current_user, target=msg,
                     target_type="outbox_message", before={"status": before}, after={"status": msg.status})

    return handle_form(None, act, success=url_for("notifications.message", message_id=msg.id),
                       message="The message will be sent on the next delivery run.",
                       again=lambda _, status: render("notifications/message.html", msg=msg, status=status))
