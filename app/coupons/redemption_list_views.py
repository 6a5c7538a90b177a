"""/admin/coupons/redemptions (on the coupons blueprint): every coupon's redemptions, filtered,
sortable, and exported as a streamed CSV of the filtered, sorted list."""
from __future__ import annotations

from flask import request

from app.auth.guards import permission_required
from app.core import nav
from app.core.errors import DomainError
from app.core.pagination import parse_limit
from app.core.web import csv_response, render
from app.coupons import redemption_list as listing
from app.coupons.models import REDEMPTION_STATUSES
from app.coupons.views import bp
from app.extensions import db

nav.register("Redemptions", "coupons.redemptions", "coupons.view", order=40)


def _block() -> str:
    """Load more swaps rows in; a filter change swaps the whole table (headers keep the filters)."""
    return "rows" if request.args.get("cursor") else "table"


@bp.get("/redemptions")
@permission_required("coupons.view")
def redemptions():
    filters, sort = listing.Filters.from_args(request.args), listing.parse_sort(request.args.get("sort"))
    try:
        limit = parse_limit(request.args.get("limit"), 50)
    except DomainError:
        limit = 50
    page = listing.page(db.session, filters, sort, limit, request.args.get("cursor") or None)
    return render("coupons/redemptions.html", block=_block(), page=page, filters=filters, sort=sort,
                  statuses=REDEMPTION_STATUSES, scopes=listing.SCOPES, args=filters.query_args(sort))


@bp.get("/redemptions/export.csv")
@permission_required("coupons.view")
def redemptions_export():
    filters, sort = listing.Filters.from_args(request.args), listing.parse_sort(request.args.get("sort"))
    return csv_response("redemptions.csv", listing.HEADER, listing.rows(db.session, filters, sort))
