"""Staff review of fraud detections: dismiss, confirm (reverses the redemption), or suspend the account.

Every decision is audited with the reviewer's note as the reason.
"""
from __future__ import annotations

from app.core import audit, clock
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound, PermissionDenied
from app.coupons import redemption as redemptions
from app.coupons.models import FraudDetection

ACTIONS = {"dismiss": "dismissed", "confirm": "confirmed", "suspend": "suspended"}


def get(session, detection_id: int) -> FraudDetection:
    row = session.get(FraudDetection, detection_id)
    if row is None:
        raise NotFound("fraud detection")
    return row


def review(session, actor, detection: FraudDetection, action: str, resolution: str, *,
           may_suspend: bool = False) -> FraudDetection:
    if action not in ACTIONS:
        raise DomainError("invalid_action", "Choose dismiss, confirm or suspend.", "action")
    resolution = require_reason(resolution, field="resolution")
    if detection.reviewed_at is not None:
        raise DomainError("already_reviewed", "This detection was reviewed already.", "action", status=409)
    if action == "suspend" and not may_suspend:
        raise PermissionDenied("Suspending an account needs the users.suspend permission.", permission="users.suspend")
    before = {"is_flagged": detection.is_flagged, "review_action": None}
    detection.reviewed_by_id, detection.reviewed_at = actor.id, clock.now()
    detection.review_action, detection.resolution = ACTIONS[action], resolution
    if action in ("confirm", "suspend"):
        row = detection.redemption
        if row is not None and row.status in ("success", "pending"):
            redemptions.reverse(session, actor, row, f"Fraud confirmed ({detection.detection_type}): {resolution}")
    if action == "suspend" and detection.user is not None and detection.user.status != "suspended":
        user = detection.user
        old = user.status
        user.status = "suspended"
        user.session_version = (user.session_version or 1) + 1  # ends the account's sessions
        audit.record(session, "users.suspended", actor=actor, target=user, before={"status": old},
                     after={"status": "suspended"}, reason=f"Coupon fraud ({detection.detection_type}): {resolution}")
    session.flush()
    audit.record(session, "coupons.fraud_reviewed", actor=actor, target=detection,
                 target_type="coupon_fraud_detection", before=before,
                 after={"review_action": detection.review_action, "user_id": detection.user_id}, reason=resolution)
    return detection
