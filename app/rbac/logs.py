"""Reading the audit log and the role change log: filters, keyset pages and CSV rows.

Both logs show production rows only unless the viewer asked to include test data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.core import sorting
from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.core.pagination import Page, keyset_page
from app.rbac.models import RoleChangeLog
from app.users.models import User

CHANGE_ACTIONS = ("role_assigned", "role_changed", "role_revoked", "permission_override_granted",
                  "permission_override_revoked", "permission_override_expired", "role_expired")
EXPORT_BATCH = 500


@dataclass(frozen=True)
class LogFilters:
    actor: str = ""
    target: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None
    include_test: bool = False

    def check(self) -> "LogFilters":
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise DomainError("invalid_range", "The start date is after the end date.", "date_from")
        return self

    def window(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC; the end date is inclusive for people, so +1 day here."""
        start = datetime.combine(self.date_from, time.min, timezone.utc) if self.date_from else None
        end = datetime.combine(self.date_to + timedelta(days=1), time.min, timezone.utc) if self.date_to else None
        return start, end


def _common(stmt, model, filters: LogFilters):
    if not filters.include_test:
        stmt = stmt.where(model.is_test.is_(False))
    start, end = filters.window()
    if start is not None:
        stmt = stmt.where(model.created_at >= start)
    if end is not None:
        stmt = stmt.where(model.created_at < end)
    return stmt


def audit_query(filters: LogFilters):
    stmt = _common(select(AuditEntry), AuditEntry, filters)
    if filters.actor:
        stmt = stmt.where(AuditEntry.actor_label.icontains(filters.actor, autoescape=True))
    if filters.target:
        stmt = stmt.where(or_(AuditEntry.target_label.icontains(filters.target, autoescape=True),
                              AuditEntry.target_id == filters.target))
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    return stmt


def change_query(filters: LogFilters):
    stmt = _common(select(RoleChangeLog), RoleChangeLog, filters).options(
        selectinload(RoleChangeLog.target_user), selectinload(RoleChangeLog.old_role),
        selectinload(RoleChangeLog.new_role))
    if filters.actor:
        stmt = stmt.where(RoleChangeLog.changed_by_label.icontains(filters.actor, autoescape=True))
    if filters.target:
        targets = select(User.id).where(User.email.icontains(filters.target, autoescape=True))
        stmt = stmt.where(RoleChangeLog.target_user_id.in_(targets))
    if filters.action:
        stmt = stmt.where(RoleChangeLog.action == filters.action)
    return stmt


# Sortable columns of the audit log (?sort=action, ?sort=-created...); all NOT NULL (keyset on them).
AUDIT_SORTS = {"created": AuditEntry.created_at, "actor": AuditEntry.actor_label, "action": AuditEntry.action}
AUDIT_DEFAULT_SORT = "-created"


def audit_sort(raw: str | None) -> sorting.Sort:
    return sorting.parse_or_default(raw, AUDIT_SORTS, AUDIT_DEFAULT_SORT)


def audit_page(session, filters: LogFilters, *, limit: int, cursor: str | None,
               sort: sorting.Sort | None = None) -> Page:
    sort = sort or audit_sort(None)
    return sorting.page(session, audit_query(filters.check()), AUDIT_SORTS[sort.key], AuditEntry.id, sort,
                        limit, cursor)


def change_page(session, filters: LogFilters, *, limit: int, cursor: str | None) -> Page:
    return keyset_page(session, change_query(filters.check()), RoleChangeLog, limit, cursor)


def audit_actions(session) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def _all(session, stmt, model) -> Iterator:
    """Every filtered row, newest first, in keyset batches (the identity map holds rows weakly)."""
    cursor = None
    while True:
        page = keyset_page(session, stmt, model, EXPORT_BATCH, cursor)
        yield from page.items
        if not page.has_more:
            return
        cursor = page.next_cursor


def _json(value) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True)


AUDIT_HEADER = ["created_at", "actor", "action", "target_type", "target_id", "target", "reason",
                "ip_address", "user_agent", "before", "after", "is_test", "api_key_id", "key_creator"]
CHANGE_HEADER = ["created_at", "changed_by", "action", "target", "old_role", "new_role", "override",
                 "old_permissions", "new_permissions", "reason", "ip_address", "user_agent", "is_test"]


def audit_rows(session, filters: LogFilters, sort: sorting.Sort | None = None) -> Iterator[list]:
    """The filtered rows in the screen's order (newest first unless sorted otherwise)."""
    sort = sort or audit_sort(None)
    for e in sorting.stream(session, audit_query(filters.check()), AUDIT_SORTS[sort.key], AuditEntry.id, sort,
                            EXPORT_BATCH):
        yield [e.created_at.isoformat(), e.actor_label, e.action, e.target_type, e.target_id, e.target_label,
               e.reason, e.ip_address, e.user_agent, _json(e.before), _json(e.after), e.is_test,
               e.api_key_id or "", e.key_creator_label or ""]


def change_rows(session, filters: LogFilters) -> Iterator[list]:
    for c in _all(session, change_query(filters.check()), RoleChangeLog):
        yield [c.created_at.isoformat(), c.changed_by_label, c.action,
               c.target_user.email if c.target_user else "", c.old_role.name if c.old_role else "",
               c.new_role.name if c.new_role else "", _json(c.override), " ".join(c.old_permissions or []),
               " ".join(c.new_permissions or []), c.reason, c.ip_address, c.user_agent, c.is_test]
