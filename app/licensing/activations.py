"""Device activations: seats, idempotent re-activation, replacement, heartbeats, rate limit.

Every seat change first locks the license row (SELECT ... FOR UPDATE), then counts and
writes, so parallel activations on one license are serialised and the active count
can never pass max_activations. Client changes (activate, deactivate) are also limited
per license (LICENSE_ACTIVATION_CHANGE_LIMIT, default 10 per 24 h) by counting the
license's own event rows under that same lock, so the limit holds across processes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import Select, func, select
from sqlalchemy.orm import contains_eager

from app.core import audit, clock, testmode
from app.core.errors import DomainError, NotFound
from app.licensing import cache
from app.licensing.models import Activation, ActivationEvent, License
from app.licensing.service import active_count, is_expired, lock

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_CHANGE_LIMIT = 10
CHANGE_WINDOW = timedelta(hours=24)
DEVICE_FIELDS = {"device_name": 120, "os_type": 40, "os_version": 80, "cpu_info": 160}


class RateLimited(DomainError):
    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, retry_after: int):
        super().__init__("activation_rate_limited", message)
        self.retry_after = retry_after


@dataclass
class ActivationResult:
    activation: Activation
    created: bool


def normalize_fingerprint(raw, field: str = "fingerprint") -> str:
    value = raw.strip().lower() if isinstance(raw, str) else ""
    if not _FINGERPRINT.match(value):
        raise DomainError("invalid_fingerprint",
                          "The fingerprint must be a SHA-256 digest: exactly 64 hexadecimal characters.", field)
    return value


def device_fields(data: dict) -> dict:
    clean = {}
    for name, limit in DEVICE_FIELDS.items():
        value = data.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise DomainError("invalid_device_field", f"{name} must be text.", name)
        value = value.strip()
        if len(value) > limit:
            raise DomainError("invalid_device_field", f"{name} is at most {limit} characters.", name)
        clean[name] = value
    return clean


def require_usable(lic: License, at: datetime | None = None) -> None:
    """The license must be active and unexpired for a device to use it (403 with the state's code)."""
    if lic.status == "revoked":
        raise DomainError("license_revoked", "This license was revoked; it cannot be used.", status=403)
    if is_expired(lic, at):
        raise DomainError("license_expired", "This license has expired.", status=403)
    if lic.status == "suspended":
        raise DomainError("license_suspended", "This license is suspended; contact support.", status=403)
    if lic.status == "pending":
        raise DomainError("license_pending", "This license is awaiting payment; it cannot be used yet.", status=403)


def change_limit() -> int:
    if has_app_context():
        return int(current_app.config.get("LICENSE_ACTIVATION_CHANGE_LIMIT", DEFAULT_CHANGE_LIMIT))
    return DEFAULT_CHANGE_LIMIT


def _check_rate(session, lic: License, at: datetime) -> None:
    """Refuse a client change when the license already made `limit` in the last 24 hours."""
    limit = change_limit()
    since = at - CHANGE_WINDOW
    stamps = session.scalars(select(ActivationEvent.created_at).where(
        ActivationEvent.license_id == lic.id, ActivationEvent.source == "client",
        ActivationEvent.created_at > since).order_by(ActivationEvent.created_at).limit(limit)).all()
    if len(stamps) >= limit:
        retry = max(1, math.ceil((stamps[0] + CHANGE_WINDOW - at).total_seconds()))
        raise RateLimited(f"This license changed devices {limit} times in 24 hours; try again in "
                          f"{_human(retry)}, or ask support.", retry)


def _human(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{max(1, rest // 60)} min"


def _event(session, lic: License, activation: Activation | None, kind: str, source: str, actor, at) -> None:
    session.add(ActivationEvent(license_id=lic.id, activation_id=getattr(activation, "id", None), kind=kind,
                                source=source, actor_id=getattr(actor, "id", None), created_at=at,
                                is_test=testmode.is_test_row(lic)))


def _by_fingerprint(session, license_id: int, fingerprint: str) -> Activation | None:
    return session.scalar(select(Activation).where(Activation.license_id == license_id,
                                                   Activation.fingerprint == fingerprint))


def activate(session, lic: License, fingerprint, device: dict | None = None, *, source: str = "client",
             actor=None, at: datetime | None = None) -> ActivationResult:
    """Take a seat for this fingerprint; a fingerprint that is already active gets its row back."""
    fingerprint = normalize_fingerprint(fingerprint)
    fields = device_fields(device or {})
    at = at or clock.now()
    lic = lock(session, lic.id)
    require_usable(lic, at)
    existing = _by_fingerprint(session, lic.id, fingerprint)
    if existing is not None and existing.status == "active":
        existing.last_seen_at = at
        return ActivationResult(existing, created=False)
    if source == "client":
        _check_rate(session, lic, at)
    in_use = active_count(session, lic.id)
    if in_use >= lic.max_activations:
        raise DomainError("too_many_activations",
                          f"All {lic.max_activations} device seats of this license are in use; "
                          "deactivate a device first.", "fingerprint")
    if existing is None:
        activation = Activation(license_id=lic.id, license=lic, fingerprint=fingerprint, status="active",
                                activated_at=at, last_seen_at=at, is_test=testmode.is_test_row(lic), **fields)
        session.add(activation)
        kind = "activated"
    else:
        activation = existing
        activation.status, activation.activated_at, activation.last_seen_at = "active", at, at
        activation.deactivated_at, activation.replaced_by_id = None, None
        for name, value in fields.items():
            if value:
                setattr(activation, name, value)
        kind = "reactivated"
    if lic.activated_at is None:
        lic.activated_at = at
    session.flush()
    _event(session, lic, activation, kind, source, actor, at)
    if source == "staff":
        audit.record(session, "licenses.device_activated", actor=actor, target=lic,
                     after=_device_snapshot(activation))
    cache.invalidate(session, lic.license_key)
    return ActivationResult(activation, created=True)


def _device_snapshot(activation: Activation) -> dict:
    return {"activation_id": activation.id, "fingerprint": activation.fingerprint,
            "device_name": activation.device_name, "status": activation.status}


def get_activation(session, lic: License, activation_id: int) -> Activation:
    activation = session.get(Activation, activation_id)
    if activation is None or activation.license_id != lic.id:
        raise NotFound("device on this license", "activation_id")
    return activation


def deactivate(session, lic: License, *, fingerprint=None, activation_id: int | None = None,
               source: str = "client", actor=None, reason: str | None = None,
               at: datetime | None = None) -> Activation:
    """Free the seat of one active device (by fingerprint from clients, by id from staff)."""
    at = at or clock.now()
    if fingerprint is not None:
        fingerprint = normalize_fingerprint(fingerprint)
    lic = lock(session, lic.id)
    activation = (_by_fingerprint(session, lic.id, fingerprint) if fingerprint is not None
                  else get_activation(session, lic, activation_id))
    if activation is None or activation.status != "active":
        raise DomainError("not_activated", "This device is not active on this license.", "fingerprint", status=404)
    if source == "client":
        _check_rate(session, lic, at)
    before = _device_snapshot(activation)
    activation.status, activation.deactivated_at = "deactivated", at
    _event(session, lic, activation, "deactivated", source, actor, at)
    if source == "staff":
        audit.record(session, "licenses.device_deactivated", actor=actor, target=lic, before=before,
                     after=_device_snapshot(activation), reason=reason)
    cache.invalidate(session, lic.license_key)
    return activation


def replace(session, lic: License, activation_id: int, new_fingerprint, device: dict | None = None, *,
            actor, reason: str, source: str = "staff", at: datetime | None = None) -> tuple[Activation, Activation]:
    """Move one seat from an active device to another in one transaction: never two seats, never none."""
    new_fingerprint = normalize_fingerprint(new_fingerprint, "new_fingerprint")
    fields = device_fields(device or {})
    at = at or clock.now()
    lic = lock(session, lic.id)
    require_usable(lic, at)
    old = get_activation(session, lic, activation_id)
    if old.status != "active":
        raise DomainError("not_activated", "Only an active device can be replaced.", "activation_id")
    target = _by_fingerprint(session, lic.id, new_fingerprint)
    if target is not None and target.status == "active":
        raise DomainError("already_active", "The new device is already active on this license.", "new_fingerprint")
    if source == "client":
        _check_rate(session, lic, at)
    before = _device_snapshot(old)
    if target is None:
        target = Activation(license_id=lic.id, license=lic, fingerprint=new_fingerprint,
                            is_test=testmode.is_test_row(lic),
                            **fields)
        session.add(target)
    else:
        for name, value in fields.items():
            if value:
                setattr(target, name, value)
    target.status, target.activated_at, target.last_seen_at, target.deactivated_at = "active", at, at, None
    session.flush()
    old.status, old.deactivated_at, old.replaced_by_id = "replaced", at, target.id
    _event(session, lic, old, "replaced", source, actor, at)
    _event(session, lic, target, "activated", "staff" if source == "staff" else source, actor, at)
    audit.record(session, "licenses.device_replaced", actor=actor, target=lic, before=before,
                 after={"replaced": _device_snapshot(old), "new": _device_snapshot(target)}, reason=reason)
    cache.invalidate(session, lic.license_key)
    return old, target


def heartbeat(session, lic: License, fingerprint, at: datetime | None = None) -> Activation:
    """The app is alive on this device: bump last_seen_at (one UPDATE, no lock on the license)."""
    fingerprint = normalize_fingerprint(fingerprint)
    at = at or clock.now()
    require_usable(lic, at)
    activation = _by_fingerprint(session, lic.id, fingerprint)
    if activation is None or activation.status != "active":
        raise DomainError("not_activated", "This device is not active on this license; activate it first.",
                          "fingerprint", status=404)
    activation.last_seen_at = at
    return activation


def devices(session, license_id: int) -> list[Activation]:
    return list(session.scalars(select(Activation).where(Activation.license_id == license_id)
                                .order_by(Activation.status, Activation.activated_at.desc())))


def recent_events(session, license_id: int, limit: int = 50) -> list[ActivationEvent]:
    return list(session.scalars(select(ActivationEvent).where(ActivationEvent.license_id == license_id)
                                .order_by(ActivationEvent.created_at.desc(), ActivationEvent.id.desc()).limit(limit)))


def stale_devices(session, days: int, data: str = "production", limit: int = 200) -> tuple[list[Activation], bool]:
    """The longest-silent active devices first; True when more than `limit` exist."""
    rows = list(session.scalars(stale_query(days, data).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def stale_query(days: int, data: str = "production", at: datetime | None = None) -> Select:
    """Active devices not seen for `days` days (activation counts as being seen)."""
    cutoff = (at or clock.now()) - timedelta(days=days)
    stmt = (select(Activation).join(License, License.id == Activation.license_id)
            .options(contains_eager(Activation.license).selectinload(License.owner))
            .where(Activation.status == "active", Activation.last_seen_at < cutoff)
            .order_by(Activation.last_seen_at, Activation.id))
    if data == "production":
        stmt = stmt.where(Activation.is_test.is_(False))
    elif data == "test":
        stmt = stmt.where(Activation.is_test.is_(True))
    return stmt


def activations_since(session, since: datetime, include_test: bool = False) -> int:
    """Devices that took a seat (new or back) since `since`, from the append-only event history."""
    stmt = select(func.count(ActivationEvent.id)).where(ActivationEvent.kind.in_(("activated", "reactivated")),
                                                        ActivationEvent.created_at >= since)
    if not include_test:
        stmt = stmt.where(ActivationEvent.is_test.is_(False))
    return session.scalar(stmt) or 0
