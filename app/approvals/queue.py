"""The combined approvals queue: pending refund requests and credit grant requests, newest first.
Deciding stays with each kind's own service (billing.refunds, credits.grants), which checks who may
decide, records the audit entry and moves the money or credits."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.billing import refunds
from app.billing.models import PaymentTransaction, RefundRequest
from app.core.money import usd
from app.credits import grants
from app.credits.models import CreditGrantRequest
from app.users.models import User

KINDS = ("refund", "credits")


@dataclass(frozen=True)
class Item:
    kind: str  # refund | credits
    id: int
    created_at: datetime
    customer: User | None
    what: str  # "Refund of $12.00" / "12,000 credits"
    reason: str
    requested_by: User | None
    is_test: bool
    can_decide: bool
    subscription_id: int | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.id}"


def _refund_items(session, actor, include_test: bool) -> list[Item]:
    items = []
    for r in refunds.pending(session, include_test):
        payment = session.get(PaymentTransaction, r.payment_id)
        customer = session.get(User, payment.user_id) if payment else None
        items.append(Item("refund", r.id, r.created_at, customer, f"Refund of {usd(r.amount)}", r.reason,
                          r.requested_by, r.is_test, refunds.can_approve(session, actor, r), r.subscription_id))
    return items


def _grant_items(session, actor, include_test: bool) -> list[Item]:
    return [Item("credits", r.id, r.created_at, r.user, f"{r.amount:,} credits", r.reason, r.requested_by, r.is_test,
                 grants.can_approve(session, actor, r))
            for r in grants.pending_requests(session) if include_test or not r.is_test]


def pending(session, actor, *, kind: str | None = None, include_test: bool = False) -> list[Item]:
    """Every pending request of the kind (both when None), newest first."""
    items = []
    if kind in (None, "refund"):
        items += _refund_items(session, actor, include_test)
    if kind in (None, "credits"):
        items += _grant_items(session, actor, include_test)
    return sorted(items, key=lambda i: (i.created_at, i.kind, i.id), reverse=True)


def pending_count(session, include_test: bool = False) -> int:
    """For the navigation badge: two COUNTs, no rows loaded."""
    total = 0
    for model in (RefundRequest, CreditGrantRequest):
        stmt = select(func.count()).select_from(model).where(model.status == "pending")
        if not include_test:
            stmt = stmt.where(model.is_test.is_(False))
        total += session.scalar(stmt) or 0
    return total
