"""A customer's credits ledger as one sortable list for the staff screen and its CSV.

Allocations and deductions live in two append-only tables; a read-only class mapped onto their
UNION ALL lets the shared sorting helpers (app/core/sorting.py) page and stream it like any
table. Row ids are made unique across both (allocation 2n, deduction 2n+1) for the keyset.
The API keeps its own cursor format (ledger.transactions)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import String, cast, literal_column, null, select, union_all
from sqlalchemy.orm import registry

from app.core import sorting
from app.credits import ledger
from app.credits.models import CreditAllocation, CreditDeduction

_allocations = select((CreditAllocation.id * 2).label("id"), CreditAllocation.user_id,
                      literal_column("'allocation'", String).label("object"), CreditAllocation.source.label("kind"),
                      CreditAllocation.amount.label("amount"), CreditAllocation.balance_after,
                      CreditAllocation.expires_at, cast(null(), String(100)).label("related_usage_id"),
                      CreditAllocation.reason, CreditAllocation.is_test, CreditAllocation.created_at)
_deductions = select((CreditDeduction.id * 2 + 1).label("id"), CreditDeduction.user_id,
                     literal_column("'deduction'", String).label("object"), CreditDeduction.deduction_type,
                     (-CreditDeduction.amount).label("amount"), CreditDeduction.balance_after, null(),
                     CreditDeduction.related_usage_id, CreditDeduction.reason, CreditDeduction.is_test,
                     CreditDeduction.created_at)
_ledger = union_all(_allocations, _deductions).subquery("credit_ledger")


class LedgerRow:
    """One ledger line (read only): object is 'allocation' or 'deduction'; amount is signed."""


registry().map_imperatively(LedgerRow, _ledger, primary_key=[_ledger.c.id])

# All NOT NULL (the keyset pages on them).
SORTS = {"created": LedgerRow.created_at, "credits": LedgerRow.amount, "kind": LedgerRow.kind}
DEFAULT_SORT = "-created"
HEADER = ["created_at", "type", "kind", "credits", "balance_after", "expires_at", "reason", "world"]


@dataclass(frozen=True)
class Filters:
    type_: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None

    @classmethod
    def parse(cls, args) -> Filters:
        """Raises DomainError (with the field) on a bad type, kind or date: the screen says which."""
        type_, kind = args.get("type") or None, args.get("kind") or None
        ledger.check_filters(type_, kind)
        return cls(type_, kind, ledger.parse_day(args.get("start"), "start"), ledger.parse_day(args.get("end"), "end"))


def parse_sort(raw: str | None) -> sorting.Sort:
    return sorting.parse_or_default(raw, SORTS, DEFAULT_SORT)


def stmt(user_id: int, filters: Filters):
    query = select(LedgerRow).where(LedgerRow.user_id == user_id)
    if filters.type_:
        query = query.where(LedgerRow.object == filters.type_)
    if filters.kind:
        query = query.where(LedgerRow.kind == filters.kind)
    if filters.since:
        query = query.where(LedgerRow.created_at >= ledger.day_start(filters.since))
    if filters.until:
        query = query.where(LedgerRow.created_at < ledger.day_start(filters.until + timedelta(days=1)))
    return query


def page(session, user_id: int, filters: Filters, sort: sorting.Sort, limit: int, cursor: str | None):
    return sorting.page(session, stmt(user_id, filters), SORTS[sort.key], LedgerRow.id, sort, limit, cursor)


def rows(session, user_id: int, filters: Filters, sort: sorting.Sort) -> Iterator[list]:
    for t in sorting.stream(session, stmt(user_id, filters), SORTS[sort.key], LedgerRow.id, sort):
        yield [t.created_at.isoformat(), t.object, t.kind, t.amount, t.balance_after,
               t.expires_at.isoformat() if t.expires_at else "", t.reason or "", "test" if t.is_test else "live"]
