"""The staff list of coupon redemptions across coupons: filters, sortable columns
(app/core/sorting.py) and the CSV rows of the filtered, sorted list."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import selectinload

from app.core import sorting
from app.core.web import TEST_DATA_PARAM, test_data_scope
from app.coupons.models import REDEMPTION_STATUSES, Coupon, Redemption
from app.users.models import User

SCOPES = ("production", "test", "all")
# All NOT NULL (the keyset pages on them).
SORTS = {"created": Redemption.created_at, "status": Redemption.status, "discount": Redemption.discount_amount,
         "amount": Redemption.final_amount}
DEFAULT_SORT = "-created"
HEADER = ["id", "created_at", "code", "customer", "status", "failure_code", "tier", "billing_cycle",
          "original_amount", "discount_amount", "final_amount", "credits_granted", "months_granted", "invoice",
          "reversed_at", "reversal_reason", "world"]


@dataclass(frozen=True)
class Filters:
    q: str = ""
    status: str = ""
    scope: str = "production"

    @classmethod
    def from_args(cls, args) -> Filters:
        return cls(q=(args.get("q") or "").strip()[:200],
                   status=args.get("status") if args.get("status") in REDEMPTION_STATUSES else "",
                   scope=test_data_scope(args))

    def query_args(self, sort: sorting.Sort) -> dict:
        return {"q": self.q or None, "status": self.status or None, "include_test": TEST_DATA_PARAM[self.scope], "sort": sort.param}


def parse_sort(raw: str | None) -> sorting.Sort:
    return sorting.parse_or_default(raw, SORTS, DEFAULT_SORT)


def stmt(filters: Filters) -> Select:
    query = select(Redemption).options(selectinload(Redemption.coupon), selectinload(Redemption.user))
    if filters.scope == "production":
        query = query.where(Redemption.is_test.is_(False))
    elif filters.scope == "test":
        query = query.where(Redemption.is_test.is_(True))
    if filters.status:
        query = query.where(Redemption.status == filters.status)
    if filters.q:
        coupon_ids = select(Coupon.id).where(Coupon.code == filters.q.upper())
        user_ids = select(User.id).where(User.email.icontains(filters.q, autoescape=True))
        query = query.where(or_(Redemption.coupon_id.in_(coupon_ids), Redemption.user_id.in_(user_ids)))
    return query


def page(session, filters: Filters, sort: sorting.Sort, limit: int, cursor: str | None):
    return sorting.page(session, stmt(filters), SORTS[sort.key], Redemption.id, sort, limit, cursor)


def _iso(value) -> str:
    return value.isoformat() if value is not None else ""


def rows(session, filters: Filters, sort: sorting.Sort) -> Iterator[list]:
    for r in sorting.stream(session, stmt(filters), SORTS[sort.key], Redemption.id, sort):
        yield [r.id, _iso(r.created_at), r.coupon.code, r.user.email if r.user else "", r.status, r.failure_code or "",
               r.tier or "", r.billing_cycle or "", str(r.original_amount), str(r.discount_amount),
               str(r.final_amount), r.credits_granted, r.months_granted,
               f"INV-{r.invoice_id:06d}" if r.invoice_id else "", _iso(r.reversed_at), r.reversal_reason or "",
               "test" if r.is_test else "live"]
