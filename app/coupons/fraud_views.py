"""The fraud review queue: open detections newest first; dismiss, confirm, or suspend the account."""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, user_can
from app.core import nav
from app.core.forms import handle_form
from app.core.pagination import keyset_page, parse_limit
from app.core.web import include_test_data, render
from app.coupons import fraud, review
from app.coupons.forms import ReviewForm
from app.coupons.models import FraudDetection
from app.extensions import db

bp = Blueprint("coupon_fraud", __name__, url_prefix="/admin/fraud")
nav.register("Fraud review", "coupon_fraud.queue", "coupons.approve_redemption", order=42)


@bp.get("")
@permission_required("coupons.approve_redemption")
def queue():
    show = "reviewed" if request.args.get("show") == "reviewed" else "open"
    stmt = fraud.queue(db.session, include_test_data(), show)
    page = keyset_page(db.session, stmt, FraudDetection, parse_limit(request.args.get("limit"), 25),
                       request.args.get("cursor"))
    return render("coupons/fraud.html", block="rows", page=page, show=show, form=ReviewForm(formdata=None),
                  may_suspend=user_can("users.suspend"))


@bp.post("/<int:detection_id>/review")
@permission_required("coupons.approve_redemption")
def decide(detection_id: int):
    detection = review.get(db.session, detection_id)
    form = ReviewForm()
    queue = url_for("coupon_fraud.queue")
    return handle_form(form, lambda: review.review(db.session, current_user, detection, form.action.data,
                                                   form.resolution.data, may_suspend=user_can("users.suspend")),
                       success=queue, again=queue,
                       message=lambda _: f"Detection #{detection.id} {detection.review_action}.")
