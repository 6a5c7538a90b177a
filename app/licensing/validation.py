"""License validation for the desktop app: one indexed lookup, optionally cached in Redis.

The answer is `valid` plus exactly one code, checked in this order:
  REVOKED / SUSPENDED / EXPIRED   the license's state (a pending, unpaid license answers NOT_ACTIVATED)
  TOO_MANY_ACTIVATIONS            more devices active than allowed (over-subscribed), or this device
                                  is not active and every seat is taken by other devices
  NOT_ACTIVATED                   no device is active on the license at all
  FINGERPRINT_MISMATCH            the license is active on other devices, not this one (a seat is free:
                                  the app may call /activate)
  VERSION_NOT_ELIGIBLE            outside purchased_version <= v < eligible_until_version (SemVer, so
                                  2.0.0-beta.1 is inside a license eligible until 2.0.0)
  VALID
Validation writes nothing; /heartbeat records that a device is alive.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, Select, String, and_, bindparam, exists, func, literal_column, select
from sqlalchemy.orm import scoped_session

from app.core import clock, pg
from app.core.errors import DomainError
from app.extensions import db
from app.licensing import cache, semver
from app.licensing.activations import normalize_fingerprint
from app.licensing.models import Activation, License
from app.licensing.service import normalize_key

CODES = ("VALID", "NOT_ACTIVATED", "TOO_MANY_ACTIVATIONS", "SUSPENDED", "REVOKED", "EXPIRED",
         "VERSION_NOT_ELIGIBLE", "FINGERPRINT_MISMATCH")


@dataclass
class LicenseState:
    """What a validation needs about (license, fingerprint); JSON-able for the cache."""

    id: int
    user_id: int
    is_test: bool
    status: str
    expires_at: str | None
    purchased_version: str
    eligible_until_version: str
    max_activations: int
    active_count: int
    fingerprint_active: bool


@dataclass
class Validation:
    valid: bool
    code: str
    message: str
    state: LicenseState

    def as_dict(self) -> dict:
        return {"valid": self.valid, "code": self.code, "message": self.message,
                "eligible_from": self.state.purchased_version, "eligible_until": self.state.eligible_until_version,
                "current_activations": self.state.active_count, "max_activations": self.state.max_activations,
                "expires_at": self.state.expires_at}


def lookup_statement() -> Select:
    """One statement: the license by its unique key, its active seat count (partial index) and
    this device's seat (unique index on license and fingerprint). Built once, bound per call
    (:license_key, :fingerprint); bench/ runs the same statement through pgbench."""
    global _STATEMENT
    if _STATEMENT is None:
        is_active = Activation.status == literal_column("'active'")  # literal: prepared plans keep the partial index
        active = (select(func.count()).select_from(Activation)
                  .where(Activation.license_id == License.id, is_active)
                  .correlate(License).scalar_subquery())
        mine = exists().where(and_(Activation.license_id == License.id,
                                   Activation.fingerprint == bindparam("fingerprint", type_=String),
                                   is_active)).correlate(License)
        _STATEMENT = select(
            License.id, License.user_id, License.is_test, License.status, License.expires_at,
            License.purchased_version, License.eligible_until_version, License.max_activations,
            active.label("active_count"), mine.label("fingerprint_active"),
        ).where(License.license_key == bindparam("license_key", type_=String))
    return _STATEMENT


_STATEMENT: Select | None = None


def _lookup(session, key: str, fingerprint: str) -> LicenseState | None:
    """Read outside a transaction when the session would open one on a pooled engine connection:
    a lone SELECT needs no BEGIN/ROLLBACK round trips (tests bind the session to their own
    connection and transaction, so they read through it)."""
    stmt, params = lookup_statement(), {"license_key": key, "fingerprint": fingerprint}
    if pg.has_own_connection():  # the API request's transaction (pipeline): read in it, no Session made
        row = pg.run(session, stmt, params).fetchone()
    else:
        row = _outside_the_pipeline(session, stmt, params)
    if row is None:
        return None
    return LicenseState(id=row.id, user_id=row.user_id, is_test=bool(row.is_test), status=row.status,
                        expires_at=clock.as_utc(row.expires_at).isoformat() if row.expires_at else None,
                        purchased_version=row.purchased_version, eligible_until_version=row.eligible_until_version,
                        max_activations=row.max_activations, active_count=int(row.active_count),
                        fingerprint_active=bool(row.fingerprint_active))


def _outside_the_pipeline(session, stmt, params: dict):
    if session is db.session and not pg.session_made(session):
        # No Session made yet in this request: none to ask (making one and closing it at the
        # request's end cost ~3% of a keyless validation), and no transaction to read in.
        bind, in_transaction = db.engine, False
    else:
        current = session() if isinstance(session, scoped_session) else session  # the scope's Session
        bind, in_transaction = current.get_bind(), current.in_transaction()
    if isinstance(bind, Engine) and not in_transaction:
        if bind.dialect.name == "postgresql":
            return pg.read_alone(bind, stmt, params)
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.execute(stmt, params).first()
    return pg.run(session, stmt, params).fetchone()


def license_state(session, key: str, fingerprint: str) -> LicenseState | None:
    cached = cache.get(key, fingerprint)
    if cached is not None:
        return LicenseState(**cached)
    state = _lookup(session, key, fingerprint)
    if state is not None and cache.enabled():
        cache.put(key, fingerprint, asdict(state))
    return state


def validate(session, license_key, fingerprint, version, *, owner_id: int | None = None,
             at: datetime | None = None) -> Validation:
    """Answer whether this device may run this version under this license (bad input raises 422)."""
    key = normalize_key(license_key)
    fingerprint = normalize_fingerprint(fingerprint)
    if version is None or version == "":
        raise DomainError("missing_version", "Send the app version being validated, such as 2.0.0.", "version")
    wanted = semver.parse(version, "version")
    state = license_state(session, key, fingerprint)
    if state is None or (owner_id is not None and state.user_id != owner_id):
        raise DomainError("license_not_found", "No license has this key.", "license_key", status=404)
    code, message = decide(state, wanted, at or clock.now())
    return Validation(code == "VALID", code, message, state)


def decide(state: LicenseState, wanted: semver.Version, at: datetime) -> tuple[str, str]:
    if state.status == "revoked":
        return "REVOKED", "This license was revoked."
    expires = datetime.fromisoformat(state.expires_at) if state.expires_at else None
    if state.status == "expired" or (expires is not None and expires <= at):
        return "EXPIRED", "This license has expired."
    if state.status == "suspended":
        return "SUSPENDED", "This license is suspended; contact support."
    if state.status == "pending":
        return "NOT_ACTIVATED", "This license is awaiting payment; it cannot be activated yet."
    if state.active_count > state.max_activations:
        return ("TOO_MANY_ACTIVATIONS", f"{state.active_count} devices are active but the license allows "
                f"{state.max_activations}; deactivate a device.")
    if not state.fingerprint_active:
        if state.active_count == 0:
            return "NOT_ACTIVATED", "No device is activated on this license yet; activate this device."
        if state.active_count >= state.max_activations:
            return ("TOO_MANY_ACTIVATIONS", f"All {state.max_activations} device seats are in use by other "
                    "devices; deactivate one to use this device.")
        return ("FINGERPRINT_MISMATCH", "This device is not activated on this license (it is active on other "
                "devices); activate this device.")
    low, high = semver.parse(state.purchased_version), semver.parse(state.eligible_until_version)
    if not semver.in_range(wanted, low, high):
        return ("VERSION_NOT_ELIGIBLE", f"Version {wanted} is not covered: this license is eligible from "
                f"{low} up to, not including, {high}.")
    return "VALID", "The license is valid for this device and version."
