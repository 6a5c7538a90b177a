"""/api/v1/coupons: validate a code for a purchase, and redeem it (Idempotency-Key).

Both answer from the same validation service as the staff preview. A refused redemption
is still an attempt: it is recorded (the fraud detectors count attempts) and answered 201
with redemption_status "failed" and its stable failure_code; an idempotent replay of it
gives the same answer without recording another attempt. Bad input (malformed or unknown
code, bad amount, someone else's subscription) is a 4xx error and records nothing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import g, jsonify
from pydantic import Field, IPvAnyAddress

from app.api.pipeline import route
from app.api.auth import register_scope
from app.api.schemas import DecimalStr, ErrorBody, RequestModel, ResponseModel, respond
from app.core.requestinfo import client_ip, user_agent
from app.coupons import coupons, redemption, validation
from app.coupons.models import Redemption
from app.core.errors import PermissionDenied
from app.extensions import db
from app.users.models import User

VALIDATE = register_scope("coupons:validate", "Check a coupon code against a purchase")
REDEEM = register_scope("coupons:redeem", "Redeem coupon codes")
# The company's servers' scope (the customers API's too): such a key may pass customer signals.
SERVER = register_scope("customers:write", "Act for customers (the company's servers)")
TAGS = ["coupons"]
Tier = Literal["free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual"]


class CouponCheck(RequestModel):
    code: str = Field(min_length=1, max_length=64, examples=["BF2025-30OFF"])
    amount: DecimalStr = Field(description="What the purchase costs before the coupon, e.g. \"99.99\"")
    tier: Tier | None = None
    billing_cycle: Literal["monthly", "annual"] | None = None
    subscription_id: int | None = Field(None, ge=1, le=2**63 - 1,
                                        description="Put the discount on this subscription's invoice")


class CouponRedeem(CouponCheck):
    device_fingerprint: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$",
                                           description="SHA-256 machine fingerprint (coupons for licensed devices)")
    customer_ip: IPvAnyAddress | None = Field(
        None, description="Server clients only: the customer's IP address, which the fraud checks use instead "
                          "of the server's")
    customer_user_agent: str | None = Field(
        None, max_length=500, description="Server clients only: the customer's browser or app user agent")


class CouponValidation(ResponseModel):
    valid: bool
    discount: str | None = Field(None, examples=["30.00"])
    final_amount: str | None = Field(None, examples=["69.99"])
    credits: int | None = None
    months_free: int | None = None
    code: str | None = Field(None, description="The failure code when not valid", examples=["expired"])
    message: str | None = None


class ApiRedemption(ResponseModel):
    id: int
    code: str
    redemption_status: Literal["success", "failed", "reversed", "pending"]
    failure_code: str | None = None
    message: str | None = None
    original_amount: str
    discount: str
    final_amount: str
    credits_granted: int
    months_granted: int
    subscription_id: int | None = None
    invoice_id: int | None = None
    created_at: datetime


class RedemptionAnswer(ResponseModel):
    redemption: ApiRedemption


def redemption_dict(row: Redemption, code: str) -> dict:
    """The answer's redemption; `code`: its coupon's (not row.coupon: a lazy load)."""
    return {"id": row.id, "code": code, "redemption_status": row.status, "failure_code": row.failure_code,
            "message": redemption.public_message(row), "original_amount": str(row.original_amount),
            "discount": str(row.discount_amount), "final_amount": str(row.final_amount),
            "credits_granted": row.credits_granted, "months_granted": row.months_granted,
            "subscription_id": row.subscription_id, "invoice_id": row.invoice_id, "created_at": row.created_at}


def is_server_client() -> bool:
    """A company server calling for its customers: a live OAuth client, or a key with customers:write."""
    key = g.get("api_key")
    return g.get("api_client") is not None or (key is not None and "customers:write" in (key.scopes or []))


def customer_signals(body: CouponRedeem) -> tuple[str | None, str | None]:
    """The IP and user agent the fraud checks judge. A server passes its customer's (or none: then
    no IP or agent is judged, never the server's own, shared by all its customers); anyone else
    is the customer and may not pass them."""
    passed = body.customer_ip is not None or body.customer_user_agent is not None
    if not is_server_client():
        if passed:
            raise PermissionDenied("Only server clients (a live OAuth client or a key with customers:write) may "
                                   "pass customer_ip and customer_user_agent.", code="customer_signals_not_allowed")
        return client_ip(), user_agent()
    ip = str(body.customer_ip) if body.customer_ip is not None else None
    return ip, (body.customer_user_agent or "").strip()[:500] or None


def _raw(body: CouponCheck) -> dict:
    return body.model_dump(exclude={"code"})


@route("POST", "/coupons/validate", scopes=VALIDATE, body=CouponCheck,
       summary="Would this code apply to this purchase, and for how much?", tags=TAGS,
       responses={200: CouponValidation, 404: ErrorBody, 422: ErrorBody})
def validate_coupon(body: CouponCheck):
    coupon = coupons.by_code(db.session, body.code)
    attempt = validation.build_attempt(db.session, coupon, g.api_user, _raw(body), is_test=g.api_test_mode)
    answer = validation.check(db.session, coupon, attempt).as_dict()
    return jsonify(CouponValidation(**answer).model_dump(mode="json", exclude_none=True))


# load_owner=False: the coupon's statement reads the few columns of the owner the redeem uses
# (coupons/snapshot.py), not the owner as an ORM object.
@route("POST", "/coupons/redeem", scopes=REDEEM, idempotent=True, body=CouponRedeem, load_owner=False,
       summary="Redeem a coupon code (fraud checks, limits taken atomically)", tags=TAGS,
       responses={201: RedemptionAnswer, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody})
def redeem_coupon(body: CouponRedeem):
    coupon, owner = coupons.for_redeem(db.session, body.code, g.api_user_id)
    if owner is None:  # the key's owner was deleted meanwhile: as before, the ORM's answer (None)
        owner = db.session.get(User, g.api_user_id)
    ip, agent = customer_signals(body)
    raw = body.model_dump(exclude={"code", "customer_ip", "customer_user_agent"})
    attempt = validation.build_attempt(db.session, coupon, owner, raw, is_test=g.api_test_mode,
                                       ip_address=ip, user_agent=agent)
    row = redemption.redeem(db.session, coupon, attempt)
    return respond(RedemptionAnswer, {"redemption": redemption_dict(row, coupon.code)}, 201)
