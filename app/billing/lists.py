"""The staff lists of invoices and payments: filters, sortable columns (app/core/sorting.py) and
the CSV rows of the filtered, sorted list. Money leaves as Decimal strings, times as ISO UTC."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Select, or_, select

from app.billing.models import (
    Invoice,
    PaymentTransaction,
)
from app.core import sorting
from app.core.web import TEST_DATA_PARAM, test_data_scope
from app.users.models import User

SCOPES = ("production", "test", "all")
INVOICE_KINDS = ("period", "proration", "credit_pack")
PAYMENT_KINDS = ("charge", "refund")
# Sortable columns (all NOT NULL: the keyset pages on them); ?sort=-total, ?sort=status...
INVOICE_SORTS = {"created": Invoice.created_at, "total": Invoice.total, "status": Invoice.status}
PAYMENT_SORTS = {"created": PaymentTransaction.created_at, "amount": PaymentTransaction.amount,
                 "status": PaymentTransaction.status}
DEFAULT_SORT = "-created"


@dataclass(frozen=True)
class Filters:
    """What the list shows; unknown values in the URL read as 'any' (a list never errors on a filter)."""
    q: str = ""
    status: str = ""
    kind: str = ""
    scope: str = "production"

    @classmethod
    def from_args(cls, args, statuses, kinds) -> Filters:
        def pick(name, allowed):
            return args.get(name) if args.get(name) in allowed else ""

        return cls(q=(args.get("q") or "").strip()[:200], status=pick("status", statuses), kind=pick("kind", kinds),
                   scope=test_data_scope(args))

    def query_args(self, sort: sorting.Sort) -> dict:
        return {"q": self.q or None, "status": self.status or None, "kind": self.kind or None, "include_test": TEST_DATA_PARAM[self.scope],
                "sort": sort.param}


def _scoped(stmt: Select, model, filters: Filters) -> Select:
    if filters.scope == "production":
        stmt = stmt.where(model.is_test.is_(False))
    elif filters.scope == "test":
        stmt = stmt.where(model.is_test.is_(True))
    if filters.status:
        stmt = stmt.where(model.status == filters.status)
    if filters.kind:
        stmt = stmt.where(model.kind == filters.kind)
    return stmt


def _invoice_number(q: str) -> int | None:
    """'INV-000042' or '42' -> 42."""
    digits = q.upper().removeprefix("INV-")
    return int(digits) if digits.isdigit() and len(digits) < 18 else None


def invoices_stmt(filters: Filters) -> Select:
    stmt = _scoped(select(Invoice).join(User, User.id == Invoice.user_id), Invoice, filters)
    if filters.q:
        number = _invoice_number(filters.q)
        match = User.email.icontains(filters.q, autoescape=True)
        stmt = stmt.where(or_(match, Invoice.id == number) if number is not None else match)
    return stmt


def payments_stmt(filters: Filters) -> Select:
    stmt = _scoped(select(PaymentTransaction).join(User, User.id == PaymentTransaction.user_id),
                   PaymentTransaction, filters)
    if filters.q:
        stmt = stmt.where(or_(User.email.icontains(filters.q, autoescape=True),
                              PaymentTransaction.stripe_payment_intent_id == filters.q,
                              PaymentTransaction.stripe_charge_id == filters.q,
                              PaymentTransaction.stripe_refund_id == filters.q))
    return stmt


def invoice_sort(raw: str | None) -> sorting.Sort:
    return sorting.parse_or_default(raw, INVOICE_SORTS, DEFAULT_SORT)


def payment_sort(raw: str | None) -> sorting.Sort:
    return sorting.parse_or_default(raw, PAYMENT_SORTS, DEFAULT_SORT)


def invoice_page(session, filters: Filters, sort: sorting.Sort, limit: int, cursor: str | None):
    stmt = invoices_stmt(filters)
    return sorting.page(session, stmt, INVOICE_SORTS[sort.key], Invoice.id, sort, limit, cursor)


def payment_page(session, filters: Filters, sort: sorting.Sort, limit: int, cursor: str | None):
    stmt = payments_stmt(filters)
    return sorting.page(session, stmt, PAYMENT_SORTS[sort.key], PaymentTransaction.id, sort, limit, cursor)


def emails(session, rows: Iterable) -> dict[int, str]:
    """The customers' emails of a page of rows, in one query (the billing rows carry only user_id)."""
    ids = {r.user_id for r in rows}
    return dict(session.execute(select(User.id, User.email).where(User.id.in_(ids))).all()) if ids else {}


def _with_emails(session, rows: Iterable, batch: int = 500) -> Iterator[tuple]:
    rows = iter(rows)
    while chunk := list(islice(rows, batch)):
        known = emails(session, chunk)
        yield from ((row, known.get(row.user_id, "")) for row in chunk)


def _iso(value) -> str:
    return value.isoformat() if value is not None else ""


INVOICE_HEADER = ["number", "created_at", "customer", "kind", "status", "currency", "subtotal", "discount", "total",
                  "amount_paid", "due_at", "paid_at", "world"]
PAYMENT_HEADER = ["id", "created_at", "customer", "kind", "status", "currency", "amount", "refunded_amount",
                  "invoice", "stripe_payment_intent", "stripe_charge", "stripe_refund", "failure_code", "world"]


def invoice_rows(session, filters: Filters, sort: sorting.Sort) -> Iterator[list]:
    rows = sorting.stream(session, invoices_stmt(filters), INVOICE_SORTS[sort.key], Invoice.id, sort)
    for i, email in _with_emails(session, rows):
        yield [i.number, _iso(i.created_at), email, i.kind, i.status, i.currency, str(i.subtotal),
               "" if i.discount is None else str(i.discount), str(i.total), str(i.amount_paid), _iso(i.due_at),
               _iso(i.paid_at), "test" if i.is_test else "live"]


def payment_rows(session, filters: Filters, sort: sorting.Sort) -> Iterator[list]:
    rows = sorting.stream(session, payments_stmt(filters), PAYMENT_SORTS[sort.key], PaymentTransaction.id, sort)
    for p, email in _with_emails(session, rows):
        yield [p.id, _iso(p.created_at), email, p.kind, p.status, p.currency, str(p.amount),
               str(p.refunded_amount), f"INV-{p.invoice_id:06d}" if p.invoice_id else "",
               p.stripe_payment_intent_id or "", p.stripe_charge_id or "", p.stripe_refund_id or "",
               p.failure_code or "", "test" if p.is_test else "live"]
