"""Request and response models of /api/v1/licenses (they validate, serialise and document).

Field formats (64-hex fingerprint, SemVer) are documented here but checked by the services,
which answer with specific codes (invalid_fingerprint, invalid_version) and messages.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.api.schemas import RequestModel, ResponseModel
from app.licensing.models import Activation, License, LicenseUpgrade



def _fingerprint():
    return Field(description="SHA-256 hex digest of the machine identity (64 hexadecimal characters)",
                 json_schema_extra={"pattern": "^[0-9a-fA-F]{64}$"}, examples=["9f86d081884c7d65..."])


def _key():
    return Field(description="The license key", examples=["PERM-7KQ4-M2XD-9HTV-3NBF"])


class ActivateRequest(RequestModel):
    license_key: str = _key()
    fingerprint: str = _fingerprint()
    device_name: str = Field("", description="At most 120 characters", examples=["John's Desktop"])
    os_type: str = Field("", description="At most 40 characters", examples=["Windows"])
    os_version: str = Field("", description="At most 80 characters", examples=["10.0.19045"])
    cpu_info: str = Field("", description="At most 160 characters", examples=["Intel Core i7-12700K @ 3.60GHz"])


class DeviceRequest(RequestModel):
    license_key: str = _key()
    fingerprint: str = _fingerprint()


class ValidateRequest(RequestModel):
    license_key: str = _key()
    fingerprint: str = _fingerprint()
    version: str = Field(description="The running app version (SemVer)", examples=["2.0.0"])


class UpgradeRequest(RequestModel):
    license_key: str = _key()
    fingerprint: str | None = Field(None, description="Required with license-key authentication: an active "
                                    "device of the license")
    to_version: str = Field(description="A released version of the next major", examples=["2.0.0"])
    payment_method: str | None = Field(None, min_length=3, max_length=100,
                                       description="A pm_ id from Stripe.js; else the owner's card on file")


class ApiActivation(ResponseModel):
    id: int
    fingerprint: str
    device_name: str
    os_type: str
    os_version: str
    cpu_info: str
    status: str = Field(examples=["active"])
    activated_at: datetime
    last_seen_at: datetime | None = None
    deactivated_at: datetime | None = None


class ApiLicense(ResponseModel):
    license_key: str
    status: str = Field(examples=["active"])
    purchased_version: str
    eligible_until_version: str
    eligible_from: str
    eligible_until: str
    max_activations: int
    current_activations: int
    remaining_activations: int
    purchased_at: datetime
    activated_at: datetime | None = None
    expires_at: datetime | None = None


class ActivationAnswer(ResponseModel):
    activation: ApiActivation
    license: ApiLicense


class HeartbeatAnswer(ResponseModel):
    activation: ApiActivation
    license_status: str


class LicenseValidation(ResponseModel):
    valid: bool
    code: str = Field(examples=["VALID"])
    message: str
    eligible_from: str = Field(examples=["1.0.0"])
    eligible_until: str = Field(examples=["2.0.0"], description="Exclusive upper bound")
    current_activations: int
    max_activations: int
    expires_at: datetime | None = None


class QuoteAnswer(ResponseModel):
    from_version: str
    to_version: str
    price_usd: str = Field(examples=["79.00"])
    pricing_rule: str = Field(examples=["early_bird"], description="standard | early_bird | loyalty")
    standard_price_usd: str
    early_bird: bool
    early_bird_until: str | None = Field(None, description="Last early-bird day (UTC date)")
    loyalty: bool
    eligible_until_after: str
    license: ApiLicense


class ApiUpgrade(ResponseModel):
    id: int
    from_version: str
    to_version: str
    price_usd: str
    pricing_rule: str
    status: str = Field(examples=["pending"])
    purchased_at: datetime
    completed_at: datetime | None = None
    eligible_until_after: str


class UpgradeAnswer(ResponseModel):
    upgrade: ApiUpgrade
    license: ApiLicense


def activation_dict(activation: Activation) -> dict:
    return ApiActivation.model_validate(activation).model_dump()


def license_dict(lic: License, current: int) -> dict:
    return {"license_key": lic.license_key, "status": lic.status, "purchased_version": lic.purchased_version,
            "eligible_until_version": lic.eligible_until_version, "eligible_from": lic.purchased_version,
            "eligible_until": lic.eligible_until_version, "max_activations": lic.max_activations,
            "current_activations": current, "remaining_activations": max(0, lic.max_activations - current),
            "purchased_at": lic.purchased_at, "activated_at": lic.activated_at, "expires_at": lic.expires_at}


def upgrade_dict(upgrade: LicenseUpgrade) -> dict:
    return {"id": upgrade.id, "from_version": upgrade.from_version, "to_version": upgrade.to_version,
            "price_usd": f"{upgrade.price:.2f}", "pricing_rule": upgrade.pricing_rule, "status": upgrade.status,
            "purchased_at": upgrade.purchased_at, "completed_at": upgrade.completed_at,
            "eligible_until_after": upgrade.new_eligible_until}
