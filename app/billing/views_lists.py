"""Staff lists of invoices and payments (on the billing_admin blueprint): filters in the URL,
sortable columns, Load more, and a streamed CSV export of the filtered, sorted list."""
from __future__ import annotations

from flask import request

from app.auth.guards import permission_required
from app.billing import lists
from app.billing.models import INVOICE_STATUSES, PAYMENT_STATUSES
from app.billing.views_admin import bp
from app.core import nav
from app.core.errors import DomainError
from app.core.pagination import parse_limit
from app.core.web import csv_response, render
from app.extensions import db

nav.register("Invoices", "billing_admin.invoices", "subscriptions.view", order=30)
nav.register("Payments", "billing_admin.payments", "subscriptions.view", order=30)


def _limit() -> int:
    try:
        return parse_limit(request.args.get("limit"), 50)
    except DomainError:  # a bad limit shows the usual page size rather than an error page
        return 50


def _block() -> str:
    """Load more swaps rows in; a filter change swaps the whole table (headers keep the filters)."""
    return "rows" if request.args.get("cursor") else "table"


@bp.get("/invoices")
@permission_required("subscriptions.view")
def invoices():
    filters = lists.Filters.from_args(request.args, INVOICE_STATUSES, lists.INVOICE_KINDS)
    sort = lists.invoice_sort(request.args.get("sort"))
    page = lists.invoice_page(db.session, filters, sort, _limit(), request.args.get("cursor") or None)
    return render("billing/invoices.html", block=_block(), page=page, filters=filters, sort=sort,
                  emails=lists.emails(db.session, page.items), statuses=INVOICE_STATUSES, kinds=lists.INVOICE_KINDS,
                  scopes=lists.SCOPES, args=filters.query_args(sort))


@bp.get("/invoices/export.csv")
@permission_required("subscriptions.view")
def invoices_export():
    filters = lists.Filters.from_args(request.args, INVOICE_STATUSES, lists.INVOICE_KINDS)
    return csv_response("invoices.csv", lists.INVOICE_HEADER,
                        lists.invoice_rows(db.session, filters, lists.invoice_sort(request.args.get("sort"))))


@bp.get("/payments")
@permission_required("subscriptions.view")
def payments():
    filters = lists.Filters.from_args(request.args, PAYMENT_STATUSES, lists.PAYMENT_KINDS)
    sort = lists.payment_sort(request.args.get("sort"))
    page = lists.payment_page(db.session, filters, sort, _limit(), request.args.get("cursor") or None)
    return render("billing/payments.html", block=_block(), page=page, filters=filters, sort=sort,
                  emails=lists.emails(db.session, page.items), statuses=PAYMENT_STATUSES, kinds=lists.PAYMENT_KINDS,
                  scopes=lists.SCOPES, args=filters.query_args(sort))


@bp.get("/payments/export.csv")
@permission_required("subscriptions.view")
def payments_export():
    filters = lists.Filters.from_args(request.args, PAYMENT_STATUSES, lists.PAYMENT_KINDS)
    return csv_response("payments.csv", lists.PAYMENT_HEADER,
                        lists.payment_rows(db.session, filters, lists.payment_sort(request.args.get("sort"))))
