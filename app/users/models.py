"""The users table: one row per person, customer or staff, production or test."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, and_, event
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, BigId, IsTestMixin, TimestampMixin

ACCOUNT_TYPES = ("standard", "test")
STATUSES = ("active", "suspended", "banned")
SERVICE_PROVIDER = "oauth_client"  # auth_provider of OAuth clients' service accounts (app/api/clients.py)


class User(UserMixin, IsTestMixin, TimestampMixin, Base):
    __tablename__ = "users"
    # New users per day (the dashboard): a window of created_at, with the production view's
    # columns, read from the index alone.
    __table_args__ = (Index("ix_users_created_at_flags", "created_at", "is_test", "account_type", "deleted_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str | None] = mapped_column(String(80))
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80), default="")
    account_type: Mapped[str] = mapped_column(String(20), default="standard", index=True)
    is_staff: Mapped[bool] = mapped_column(default=False, index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    email_verified: Mapped[bool] = mapped_column(default=False)
    auth_provider: Mapped[str] = mapped_column(String(20), default="local")
    google_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigId)
    # Wrong MFA codes in a row, and when that locked the second factor (app/auth/mfa_guard.py).
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mfa_locked_at: Mapped[datetime | None]
    # Bumped to end every session of the user (password change, sign-out everywhere).
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    last_login_at: Mapped[datetime | None]
    test_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    # The tier a test account was requested with (kept as data until billing assigns one).
    test_tier: Mapped[str | None] = mapped_column(String(40))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # A test twin's production customer: the account a production customer's sandbox key acts as.
    twin_of_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # The company's own id for the customer (provisioning API, CSV import), and its free-form notes.
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    customer_metadata: Mapped[dict | None] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    @property
    def audit_label(self) -> str:
        return self.email

    @hybrid_property
    def is_active(self) -> bool:  # flask-login; also a SQL expression (API key lookup)
        return self.status == "active" and self.deleted_at is None

    @is_active.inplace.expression
    @classmethod
    def _is_active_expression(cls):
        return and_(cls.status == "active", cls.deleted_at.is_(None))

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


@event.listens_for(User, "before_insert")
@event.listens_for(User, "before_update")
def _sync_test_flag(mapper, connection, user: User) -> None:
    """account_type is what people read; is_test is what every query filters on."""
    if user.is_test and user.account_type != "test":
        user.account_type = "test"
    user.is_test = user.account_type == "test"
    user.email = user.email.strip().lower()
