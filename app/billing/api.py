"""Client API for subscriptions and credit packs (DESIGN.md §6 shapes).

A key acts for its owner. Sandbox and development keys are test traffic: they may change a
test account's subscription (Stripe's test key is used) but never a production one.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import g, jsonify, request
from pydantic import Field

from app.api.pipeline import route
from app.api.auth import register_scope
from app.api.schemas import RequestModel, ResponseModel, respond
from app.billing import changes, packs, subscriptions, tiers
from app.billing.models import Invoice
from app.core import testmode
from app.core.errors import DomainError
from app.credits import balances
from app.credits.api_schemas import Balance
from app.extensions import db

READ = register_scope("billing:read", "Read the subscription, its entitlements and the credit packs")
WRITE = register_scope("billing:write", "Change or cancel the subscription, buy credit packs")


class ApiSubscription(ResponseModel):
    id: int
    tier: str
    status: str
    billing_cycle: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    price_usd: str
    monthly_credits: int
    max_credit_rollover: int
    features: dict[str, Any]
    has_payment_method: bool


class ApiFeatures(ResponseModel):
    tier: str
    status: str | None
    features: dict[str, Any]
    feature: str | None = None
    allowed: bool | None = None


class PreviewChangeRequest(RequestModel):
    to_tier: str = Field(min_length=1, max_length=40)
    effective_date: datetime | date | None = None


class ApiQuote(ResponseModel):
    from_tier: str
    to_tier: str | None
    change_type: str
    days_remaining: int
    days_in_cycle: int
    unused_credit_value_usd: str
    new_tier_prorated_cost_usd: str
    net_charge_usd: str
    effective_date: datetime


class ApiInvoice(ResponseModel):
    id: int
    number: str
    kind: str
    status: str
    subtotal: str
    discount: str | None
    total: str
    amount_paid: str


class ApiChange(ResponseModel):
    subscription: ApiSubscription
    proration: ApiQuote | None = None
    proration_status: str | None = None
    invoice: ApiInvoice | None = None


class CancelRequest(RequestModel):
    at_period_end: bool = True


class PaymentMethodRequest(RequestModel):
    payment_method: str = Field(min_length=3, max_length=100, description="A pm_ id from Stripe.js")


class ApiPack(ResponseModel):
    id: int
    name: str
    credits: int
    price_usd: str


class ApiPurchase(ResponseModel):
    id: int
    pack_id: int
    credits: int
    price_usd: str
    status: str
    invoice_id: int | None
    balance: Balance


def _sub_data(sub) -> dict:
    return {"id": sub.id, "tier": sub.tier.name, "status": sub.status, "billing_cycle": sub.billing_cycle,
            "current_period_start": sub.current_period_start, "current_period_end": sub.current_period_end,
            "cancel_at_period_end": sub.cancel_at_period_end, "price_usd": str(sub.tier.price_for(sub.billing_cycle)),
            "monthly_credits": sub.tier.monthly_credits, "max_credit_rollover": sub.tier.max_rollover,
            "features": sub.tier.features, "has_payment_method": bool(sub.default_payment_method_id)}


def _invoice_data(invoice: Invoice | None) -> dict | None:
    if invoice is None:
        return None
    return {"id": invoice.id, "number": invoice.number, "kind": invoice.kind, "status": invoice.status,
            "subtotal": str(invoice.subtotal), "discount": None if invoice.discount is None else str(invoice.discount),
            "total": str(invoice.total), "amount_paid": str(invoice.amount_paid)}


def _my_subscription(for_write: bool = False):
    sub = subscriptions.live_subscription(db.session, g.api_user.id)
    if sub is None:
        raise DomainError("no_subscription", "This account has no live subscription.", None, status=404)
    if for_write and testmode.active() and not sub.is_test:
        raise DomainError("test_mode_not_allowed", "A sandbox or development key cannot change a production "
                          "subscription; use a live key.", None, status=403)
    return sub


@route("GET", "/subscription", scopes=READ, summary="The caller's subscription", responses={200: ApiSubscription},
       tags=["billing"], errors=(404,))
def get_subscription():
    return respond(ApiSubscription, _sub_data(_my_subscription()))


@route("GET", "/subscription/features", scopes=READ,
       summary="Entitlements of the caller's tier; ?feature=name answers allowed true/false",
       responses={200: ApiFeatures}, tags=["billing"])
def get_features():
    sub = subscriptions.live_subscription(db.session, g.api_user.id)
    tier = tiers.effective_tier(db.session, g.api_user)
    data = {"tier": tier.name, "status": sub.status if sub else None, "features": tier.features}
    feature = (request.args.get("feature") or "").strip()
    if feature:
        data.update(feature=feature, allowed=tiers.can_access_feature(db.session, g.api_user, feature))
    return respond(ApiFeatures, data)


@route("POST", "/subscription/preview-change", scopes=READ, body=PreviewChangeRequest,
       summary="Quote a tier change (DESIGN.md §4); nothing is written", responses={200: ApiQuote},
       tags=["billing"], errors=(404, 409))
def preview_change(body: PreviewChangeRequest):
    quote = changes.preview_change(db.session, _my_subscription(), body.to_tier, body.effective_date)
    return respond(ApiQuote, quote.as_api())


@route("POST", "/subscription/change", scopes=WRITE, idempotent=True, body=PreviewChangeRequest,
       summary="Change tier now, with proration; an upgrade is charged to the card on file",
       responses={201: ApiChange}, tags=["billing"], errors=(402, 404, 409, 503))
def change_subscription(body: PreviewChangeRequest):
    sub = _my_subscription(for_write=True)
    event = changes.change_tier(db.session, g.api_user, sub, body.to_tier, effective=body.effective_date,
                                staff=False)
    quote = {"from_tier": event.from_tier, "to_tier": event.to_tier, "change_type": event.change_type,
             "days_remaining": event.days_remaining, "days_in_cycle": event.days_in_cycle,
             "unused_credit_value_usd": str(event.unused_credit_value),
             "new_tier_prorated_cost_usd": str(event.new_tier_prorated_cost), "net_charge_usd": str(event.net_charge),
             "effective_date": event.effective_date}
    invoice = db.session.get(Invoice, event.invoice_id) if event.invoice_id else None
    return respond(ApiChange, {"subscription": _sub_data(sub), "proration": quote, "proration_status": event.status,
                               "invoice": _invoice_data(invoice)}, 201)


@route("POST", "/subscription/cancel", scopes=WRITE, idempotent=True, body=CancelRequest,
       summary="Cancel at the end of the period (default) or now, refunding the unused part",
       responses={200: ApiChange}, tags=["billing"], errors=(404, 409))
def cancel_subscription(body: CancelRequest):
    sub = _my_subscription(for_write=True)
    event = changes.cancel(db.session, g.api_user, sub, at_period_end=body.at_period_end, staff=False)
    invoice = db.session.get(Invoice, event.invoice_id) if event and event.invoice_id else None
    return respond(ApiChange, {"subscription": _sub_data(sub), "proration_status": event.status if event else None,
                               "invoice": _invoice_data(invoice)})


@route("POST", "/subscription/payment-method", scopes=WRITE, idempotent=True, body=PaymentMethodRequest,
       summary="Put a card on file; a subscription in dunning is retried at once",
       responses={200: ApiSubscription}, tags=["billing"], errors=(402, 404, 409, 503))
def set_payment_method(body: PaymentMethodRequest):
    sub = _my_subscription(for_write=True)
    changes.attach_card(db.session, g.api_user, sub, body.payment_method, reason="customer updated the card")
    return respond(ApiSubscription, _sub_data(sub))


@route("GET", "/credits/packs", scopes=READ, summary="Credit packs on sale", responses={200: None},
       tags=["billing"])
def list_packs():
    data = [{"id": p.id, "name": p.name, "credits": p.credits, "price_usd": str(p.price)}
            for p in packs.all_packs(db.session, active_only=True)]
    return jsonify({"object": "list", "url": request.path, "has_more": False,
                    "data": [ApiPack.model_validate(item).model_dump(mode="json") for item in data]})


@route("POST", "/credits/packs/<int:pack_id>/purchase", scopes=WRITE, idempotent=True,
       summary="Buy a credit pack with the card on file; the credits arrive as bonus credits once paid",
       responses={201: ApiPurchase}, tags=["billing"], errors=(402, 404, 409, 503))
def purchase_pack(pack_id: int):
    _my_subscription(for_write=True)
    purchase = packs.purchase(db.session, g.api_user, g.api_user, pack_id, staff=False)
    view = balances.get_balance(db.session, g.api_user.id)
    return respond(ApiPurchase, {"id": purchase.id, "pack_id": purchase.pack_id, "credits": purchase.credits,
                                 "price_usd": str(purchase.price), "status": purchase.status,
                                 "invoice_id": purchase.invoice_id, "balance": view}, 201)
