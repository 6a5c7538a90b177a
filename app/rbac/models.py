"""RBAC tables: permissions, roles, assignments, overrides, change log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin

role_permissions = Table(
    "role_permissions",
    Base.metadata,
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("permission_id", ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True),
)


class Permission(Base):
    __tablename__ = "permissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    category: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(255), default="")


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(255), default="")
    is_system: Mapped[bool] = mapped_column(default=False)
    hierarchy: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    permissions: Mapped[list[Permission]] = relationship(secondary=role_permissions, order_by=Permission.name)

    @property
    def permission_names(self) -> list[str]:
        return sorted(p.name for p in self.permissions)

    @property
    def audit_label(self) -> str:
        return self.name


class RoleAssignment(IsTestMixin, Base):
    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    ended_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    notify_user: Mapped[bool] = mapped_column(default=False)

    role: Mapped[Role] = relationship(lazy="joined")

    def in_force(self, at: datetime) -> bool:
        return self.is_active and (self.expires_at is None or self.expires_at > at)


class PermissionOverride(IsTestMixin, Base):
    __tablename__ = "permission_overrides"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_assignment_id: Mapped[int | None] = mapped_column(ForeignKey("role_assignments.id", ondelete="SET NULL"),
                                                           index=True)
    permission: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(10))  # grant | revoke
    expires_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    granted_at: Mapped[datetime] = mapped_column(default=clock.now)
    is_active: Mapped[bool] = mapped_column(default=True)
    ended_at: Mapped[datetime | None]

    def in_force(self, at: datetime) -> bool:
        return self.is_active and (self.expires_at is None or self.expires_at > at)

    def describe(self) -> dict[str, Any]:
        return {"permission": self.permission, "action": self.action,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "reason": self.reason, "granted_by_id": self.granted_by_id,
                "granted_at": self.granted_at.isoformat() if self.granted_at else None}


class RoleChangeLog(IsTestMixin, Base):
    __tablename__ = "role_change_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    changed_by_label: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(40), index=True)
    old_role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="SET NULL"))
    new_role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="SET NULL"))
    override: Mapped[Any | None] = mapped_column(JSON)
    old_permissions: Mapped[list] = mapped_column(JSON, default=list)
    new_permissions: Mapped[list] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text, default="")
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))

    target_user = relationship("User", foreign_keys=[target_user_id])
    old_role = relationship(Role, foreign_keys=[old_role_id])
    new_role = relationship(Role, foreign_keys=[new_role_id])

