"""/api/v1/licenses: the desktop app's activation, validation, heartbeat and upgrade calls.

Two ways to authenticate (DESIGN.md §6): the desktop app has no API key, so the license
key in the request *is* the credential (with the device's fingerprint); an API key
(`Authorization: Bearer rph_...`) also works and then only reaches its owner's licenses
(anyone else's key answers 404, as an unknown one does). A test license, or a sandbox key,
runs the request in test mode. License-key requests are limited per IP address
(LICENSE_API_RATE_LIMIT), API-key requests by the key's own limit (app/api/pipeline.py).
"""
from __future__ import annotations

from flask import g, request
from sqlalchemy import select

from app.api import api_bp
from app.api.auth import register_scope
from app.api.errors import api_error
from app.api.pipeline import OPTIONAL, route
from app.api.schemas import respond
from app.core import current, testmode
from app.core.errors import DomainError
from app.extensions import db
from app.licensing import activations, service, upgrades, validation
from app.licensing.activations import RateLimited
from app.licensing.api_schemas import (ActivateRequest, ActivationAnswer, DeviceRequest, HeartbeatAnswer,
                                       QuoteAnswer, UpgradeAnswer, UpgradeRequest, ValidateRequest,
                                       LicenseValidation, activation_dict, license_dict, upgrade_dict)
from app.licensing.models import Activation

READ = register_scope("licenses:read", "Validate licenses and quote upgrades")
WRITE = register_scope("licenses:write", "Activate and deactivate devices, send heartbeats, buy upgrades")
AUTH_NOTE = ("Authenticate with the license key (and the device fingerprint) in the request, or with an "
             "API key of the license's owner.")


def _rate_limit() -> str:
    return current.app().config.get("LICENSE_API_RATE_LIMIT", "300 per minute")


def _credentials(from_query: bool) -> tuple[object, object]:
    """The license key and fingerprint: JSON body for POSTs, the X-License-Key and
    X-License-Fingerprint headers for GETs. Never the URL: request lines end up in logs (the dev
    server's, a proxy's), so a key sent there is refused and the client learns the header."""
    if "license_key" in request.args:
        raise DomainError("license_key_in_url", "Send the license key in the X-License-Key header, never in the "
                          "URL (URLs are logged); the fingerprint goes in X-License-Fingerprint.", "license_key",
                          status=400)
    if from_query:
        return request.headers.get("X-License-Key"), request.headers.get("X-License-Fingerprint")
    data = request.get_json(silent=True, cache=True)
    if not isinstance(data, dict):
        raise DomainError("invalid_json", "The request body must be a JSON object.", None, status=400)
    return data.get("license_key"), data.get("fingerprint")


def licence_caller(*, device_required: bool = False, from_query: bool = False):
    """The pipeline's caller step for a licence route: g.license (and g.api_user, its owner)
    from the licence key in the request; with an API key (authenticated already) the licence
    must be its owner's.

    With `device_required`, a license-key caller must also send the fingerprint of a device
    active on the license (buying and quoting happen from an activated install).
    """

    def resolve() -> None:
        raw_key, raw_fingerprint = _credentials(from_query)
        lic = service.find_by_key(db.session, raw_key)
        bearer_user = g.get("api_user")
        if bearer_user is not None and lic.user_id != bearer_user.id:
            raise DomainError("license_not_found", "No license has this key.", "license_key", status=404)
        if bearer_user is None and device_required:
            fingerprint = activations.normalize_fingerprint(raw_fingerprint)
            if not db.session.scalar(select(Activation.id).where(
                    Activation.license_id == lic.id, Activation.fingerprint == fingerprint,
                    Activation.status == "active")):
                raise DomainError("device_not_activated", "Send the fingerprint of a device activated on "
                                  "this license.", "fingerprint", status=403)
        g.license, g.api_user, g.api_user_id = lic, lic.owner, lic.user_id
        if lic.is_test:
            testmode.activate()

    return resolve


@api_bp.errorhandler(RateLimited)
def _activation_rate_limited(error: RateLimited):
    db.session.rollback()
    return api_error(429, "rate_limit_error", error.code, error.message, None,
                     {"Retry-After": str(error.retry_after)})


def _seats(lic) -> dict:
    return license_dict(lic, service.active_count(db.session, lic.id))


@route("POST", "/licenses/activate", per_ip=_rate_limit, auth=OPTIONAL, scopes=WRITE, caller=licence_caller(),
       idempotent=True, body=ActivateRequest, summary="Activate a device on a license",
       responses={201: ActivationAnswer, 200: ActivationAnswer}, tags=["licenses"],
       description="201 when the device takes a seat; 200 with the same activation when "
              "this fingerprint is already active (idempotent). 403 license_revoked/suspended/expired/pending, "
              "422 too_many_activations or invalid_fingerprint, 429 activation_rate_limited (Retry-After). "
              + AUTH_NOTE)
def activate_device(body: ActivateRequest):
    device = body.model_dump(include={"device_name", "os_type", "os_version", "cpu_info"})
    result = activations.activate(db.session, g.license, body.fingerprint, device, source="client")
    db.session.flush()
    answer = {"activation": activation_dict(result.activation), "license": _seats(g.license)}
    return respond(ActivationAnswer, answer, 201 if result.created else 200)


@route("POST", "/licenses/deactivate", per_ip=_rate_limit, auth=OPTIONAL, scopes=WRITE, caller=licence_caller(),
       body=DeviceRequest, summary="Deactivate a device (frees its seat)", responses={200: ActivationAnswer},
       tags=["licenses"],
       description="404 not_activated when the fingerprint is not active on the license. " + AUTH_NOTE)
def deactivate_device(body: DeviceRequest):
    activation = activations.deactivate(db.session, g.license, fingerprint=body.fingerprint, source="client")
    answer = {"activation": activation_dict(activation), "license": _seats(g.license)}
    return respond(ActivationAnswer, answer)


@route("POST", "/licenses/heartbeat", per_ip=_rate_limit, auth=OPTIONAL, scopes=WRITE, caller=licence_caller(),
       body=DeviceRequest, summary="Tell the server this device is running (updates last_seen_at)",
       responses={200: HeartbeatAnswer}, tags=["licenses"], description=AUTH_NOTE)
def heartbeat(body: DeviceRequest):
    activation = activations.heartbeat(db.session, g.license, body.fingerprint)
    answer = {"activation": activation_dict(activation), "license_status": g.license.status}
    return respond(HeartbeatAnswer, answer)


def _validate(body: ValidateRequest, owner_id: int | None):
    result = validation.validate(db.session, body.license_key, body.fingerprint, body.version, owner_id=owner_id)
    if result.state.is_test:
        testmode.activate()
    return respond(LicenseValidation, result.as_dict())


@route("POST", "/licenses/validate", per_ip=_rate_limit, auth=OPTIONAL, scopes=READ, load_owner=False,
       body=ValidateRequest,
       summary="Validate a license for this device and app version", responses={200: LicenseValidation},
       tags=["licenses"],
       description="Always 200 for a known key: `valid` and one `code` (VALID, "
              "NOT_ACTIVATED, TOO_MANY_ACTIVATIONS, SUSPENDED, REVOKED, EXPIRED, VERSION_NOT_ELIGIBLE, "
              "FINGERPRINT_MISMATCH) with the eligible range. 404 license_not_found, 422 for a malformed key, "
              "fingerprint or version. One indexed lookup, cached briefly in Redis when configured. " + AUTH_NOTE)
def validate_license(body: ValidateRequest):
    return _validate(body, g.api_user_id)


@route("GET", "/licenses/upgrade-quote", per_ip=_rate_limit, auth=OPTIONAL, scopes=READ,
       caller=licence_caller(device_required=True, from_query=True),
       summary="Price the upgrade of a license to a version", responses={200: QuoteAnswer}, tags=["licenses"],
       description="Query: to=2.0.0. License key and fingerprint in the X-License-Key and "
              "X-License-Fingerprint headers (never in the URL: 400 license_key_in_url), or an API key "
              "(with X-License-Key naming the license). "
              "422 invalid_version, unknown_version, version_not_released, upgrade_not_newer, upgrade_skips_major.")
def upgrade_quote():
    to = request.args.get("to")
    if not to:
        raise DomainError("parameter_missing", "Missing required param: to.", "to")
    q = upgrades.quote(db.session, g.license, to)
    return respond(QuoteAnswer, {**q.as_dict(), "license": _seats(g.license)})


@route("POST", "/licenses/upgrade", per_ip=_rate_limit, auth=OPTIONAL, scopes=WRITE,
       caller=licence_caller(device_required=True), idempotent=True, body=UpgradeRequest,
       summary="Buy the upgrade to the next major version, charged to the owner's card",
       responses={201: UpgradeAnswer}, tags=["licenses"],
       description="A PaymentIntent is charged for the quoted price (the card given as "
              "payment_method, else the owner's card on file); the upgrade completes, moving eligibility to the "
              "next major, only once it is paid. 402 when the card is declined (the license is unchanged), 409 "
              "no_payment_method without a card, 422 upgrade_pending when one already awaits payment. Send an "
              "Idempotency-Key. " + AUTH_NOTE)
def buy_upgrade(body: UpgradeRequest):
    upgrade = upgrades.sell(db.session, g.license.owner, g.license, body.to_version,
                            payment_method=body.payment_method)
    return respond(UpgradeAnswer, {"upgrade": upgrade_dict(upgrade), "license": _seats(g.license)}, 201)
