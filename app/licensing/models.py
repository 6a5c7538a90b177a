"""Perpetual licensing tables: app versions, licenses, device activations, their events, upgrades.

Version columns are stored twice: as typed (for people) and as a SemVer sort key (for
queries), kept in step by the `*_version` setters below.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin, Money, TimestampMixin
from app.licensing import semver
from app.users.models import User

# Binary collation on PostgreSQL so that sort keys compare byte by byte (SQLite's default is binary).
VersionKey = String(80).with_variant(String(80, collation="C"), "postgresql")

LICENSE_STATUSES = ("pending", "active", "suspended", "revoked", "expired")
ACTIVATION_STATUSES = ("active", "deactivated", "replaced")
UPGRADE_STATUSES = ("pending", "completed", "failed", "refunded")
EVENT_KINDS = ("activated", "reactivated", "deactivated", "replaced")


class AppVersion(TimestampMixin, Base):
    """A released (or scheduled) version of the desktop app: product reference data, not test data."""

    __tablename__ = "app_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    version_key: Mapped[str] = mapped_column(VersionKey, index=True)
    release_date: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")

    def set_version(self, value: str) -> None:
        parsed = semver.parse(value)
        self.version, self.version_key = str(parsed), parsed.sort_key()

    @property
    def parsed(self) -> semver.Version:
        return semver.parse(self.version)


class License(IsTestMixin, TimestampMixin, Base):
    __tablename__ = "licenses"
    # Newest-first keyset pages walk (created_at, id).
    __table_args__ = (Index("ix_licenses_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    license_key: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    purchase_price: Mapped[Decimal] = Money()
    purchased_version: Mapped[str] = mapped_column(String(64))
    purchased_version_key: Mapped[str] = mapped_column(VersionKey)
    eligible_until_version: Mapped[str] = mapped_column(String(64))
    eligible_until_key: Mapped[str] = mapped_column(VersionKey)
    max_activations: Mapped[int] = mapped_column(Integer, default=3)
    purchased_at: Mapped[datetime] = mapped_column(default=clock.now)
    activated_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime | None]
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Set by the billing gateway when it takes the payment (none for staff-issued licenses).
    payment_reference: Mapped[str | None] = mapped_column(String(255))
    # The invoice a bought license is paid by (billing/license_sales.py); None for staff-issued ones.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    owner: Mapped[User] = relationship(foreign_keys=[user_id])

    def set_versions(self, purchased: str | None = None, eligible_until: str | None = None) -> None:
        if purchased is not None:
            parsed = semver.parse(purchased, "purchased_version")
            self.purchased_version, self.purchased_version_key = str(parsed), parsed.sort_key()
        if eligible_until is not None:
            parsed = semver.parse(eligible_until, "eligible_until_version")
            self.eligible_until_version, self.eligible_until_key = str(parsed), parsed.sort_key()

    @property
    def eligible_from(self) -> semver.Version:
        return semver.parse(self.purchased_version)

    @property
    def eligible_until(self) -> semver.Version:
        return semver.parse(self.eligible_until_version)

    @property
    def audit_label(self) -> str:
        return self.license_key

    def snapshot(self) -> dict:
        """The fields staff actions change, for audit before/after."""
        return {"status": self.status, "max_activations": self.max_activations,
                "eligible_until_version": self.eligible_until_version,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None}


class Activation(IsTestMixin, TimestampMixin, Base):
    """One device on one license; a device that comes back reuses its row (unique per license)."""

    __tablename__ = "license_activations"
    __table_args__ = (
        UniqueConstraint("license_id", "fingerprint", name="uq_license_activations_license_fingerprint"),
        # Counting active seats and the stale-devices view read only active rows.
        Index("ix_license_activations_active_license", "license_id",
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
        Index("ix_license_activations_status_last_seen", "status", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    device_name: Mapped[str] = mapped_column(String(120), default="")
    os_type: Mapped[str] = mapped_column(String(40), default="")
    os_version: Mapped[str] = mapped_column(String(80), default="")
    cpu_info: Mapped[str] = mapped_column(String(160), default="")
    status: Mapped[str] = mapped_column(String(20), default="active")
    activated_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime | None]
    deactivated_at: Mapped[datetime | None]
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("license_activations.id", ondelete="SET NULL"), index=True)

    license: Mapped[License] = relationship(lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"{self.device_name or 'device'} ({self.fingerprint[:12]}…)"


class ActivationEvent(IsTestMixin, Base):
    """Append-only history of seat changes; client events feed the per-license rate limit."""

    __tablename__ = "license_activation_events"
    __table_args__ = (Index("ix_license_activation_events_license_at", "license_id", "created_at"),
                      # Activations over a window of days (the dashboard).
                      Index("ix_license_activation_events_kind_at", "kind", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("license_activations.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # client | staff
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    activation: Mapped[Activation | None] = relationship(lazy="joined")


class LicenseUpgrade(IsTestMixin, TimestampMixin, Base):
    __tablename__ = "license_upgrades"
    __table_args__ = (
        # At most one upgrade awaiting payment per license.
        Index("uq_license_upgrades_one_pending", "license_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    from_version: Mapped[str] = mapped_column(String(64))
    to_version: Mapped[str] = mapped_column(String(64))
    price: Mapped[Decimal] = Money()
    pricing_rule: Mapped[str] = mapped_column(String(20))  # standard | early_bird | loyalty
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    purchased_at: Mapped[datetime] = mapped_column(default=clock.now)
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
    payment_reference: Mapped[str | None] = mapped_column(String(255))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"), index=True)
    # Eligibility before and after completion, so a refund can put it back exactly.
    previous_eligible_until: Mapped[str | None] = mapped_column(String(64))
    new_eligible_until: Mapped[str] = mapped_column(String(64))

    license: Mapped[License] = relationship(lazy="joined")

    @property
    def audit_label(self) -> str:
        return f"{self.from_version} -> {self.to_version}"
