"""Purchases that are paid (issue 17): subscribe from free with a card, buy a perpetual license.

The license upgrade route (licensing/api.py) charges the same way (billing/license_sales.py).
"""
from __future__ import annotations

from flask import g
from pydantic import Field

from app.api.pipeline import route
from app.api.schemas import RequestModel, ResponseModel, respond
from app.billing import license_sales
from app.billing.api import WRITE, ApiChange, _invoice_data, _my_subscription, _sub_data
from app.billing.models import Invoice
from app.extensions import db
from app.licensing.api import WRITE as LICENSES_WRITE


class SubscribeRequest(RequestModel):
    tier: str = Field(min_length=1, max_length=40)
    payment_method: str | None = Field(None, min_length=3, max_length=100,
                                       description="A pm_ id from Stripe.js; else the card on file")


class PurchaseLicenseRequest(RequestModel):
    payment_method: str | None = Field(None, min_length=3, max_length=100,
                                       description="A pm_ id from Stripe.js; else the card on file")


class ApiBoughtLicense(ResponseModel):
    id: int
    license_key: str
    status: str
    purchased_version: str
    eligible_until_version: str
    max_activations: int
    price_usd: str
    invoice_id: int | None


@route("POST", "/subscription/subscribe", scopes=WRITE, idempotent=True, body=SubscribeRequest,
       summary="Subscribe to a paid tier with a card: charged first, the tier and its credits once paid",
       responses={201: ApiChange}, tags=["billing"], errors=(402, 404, 409, 503))
def subscribe(body: SubscribeRequest):
    sub = _my_subscription(for_write=True)
    event = license_sales.subscribe(db.session, g.api_user, body.tier, payment_method=body.payment_method)
    invoice = db.session.get(Invoice, event.invoice_id) if event.invoice_id else None
    return respond(ApiChange, {"subscription": _sub_data(sub), "proration_status": event.status,
                               "invoice": _invoice_data(invoice)}, 201)


@route("POST", "/licenses/purchase", scopes=LICENSES_WRITE, idempotent=True, body=PurchaseLicenseRequest,
       summary="Buy a perpetual license of the current version; issued once the payment succeeds",
       responses={201: ApiBoughtLicense}, tags=["licenses"], errors=(402, 409, 503))
def purchase_license(body: PurchaseLicenseRequest):
    _my_subscription(for_write=True)
    lic = license_sales.buy_license(db.session, g.api_user, payment_method=body.payment_method)
    return respond(ApiBoughtLicense, {"id": lic.id, "license_key": lic.license_key, "status": lic.status,
                                      "purchased_version": lic.purchased_version,
                                      "eligible_until_version": lic.eligible_until_version,
                                      "max_activations": lic.max_activations, "price_usd": str(lic.purchase_price),
                                      "invoice_id": lic.invoice_id}, 201)
