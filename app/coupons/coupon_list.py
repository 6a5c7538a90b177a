"""The staff list of coupons: sortable columns (keyset over (column, id)) and the streamed CSV
export of the same filtered, sorted list."""
from __future__ import annotations

from app.core import sorting
from app.core.labels import label
from app.coupons.models import Coupon

SORTS = {"created": Coupon.created_at, "code": Coupon.code, "uses": Coupon.uses_count,
         "valid_from": Coupon.valid_from, "valid_until": Coupon.valid_until}
DEFAULT_SORT = "-created"
HEADER = ["id", "code", "description", "discount_type", "discount_value", "uses", "max_uses", "test_uses",
          "valid_from", "valid_until", "campaign", "active", "created_at"]


def sort_for(raw: str | None) -> sorting.Sort:
    return sorting.parse_or_default(raw, SORTS, DEFAULT_SORT)


def page(session, stmt, sort: sorting.Sort, limit: int, cursor: str | None):
    return sorting.page(session, stmt, SORTS[sort.key], Coupon.id, sort, limit, cursor)


def rows(session, stmt, sort: sorting.Sort):
    """CSV rows of every coupon in the list, read a keyset batch at a time while streaming."""
    for c in sorting.stream(session, stmt, SORTS[sort.key], Coupon.id, sort):
        yield [c.id, c.code, c.description or "", label(c.discount_type), c.discount_value, c.uses_count,
               c.max_uses if c.max_uses is not None else "", c.test_uses_count, c.valid_from.isoformat(),
               c.valid_until.isoformat(), c.campaign.name if c.campaign else "", "yes" if c.is_active else "no",
               c.created_at.isoformat()]
