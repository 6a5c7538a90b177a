"""Staff-facing user screens: the users list and a user's page (blueprint `users`). Here, not in
app/users: they show access (rbac) and test twins (sandbox), which build on users."""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required
from app.core import nav, sorting
from app.core.errors import DomainError
from app.core.pagination import Page, parse_limit
from app.core.web import TEST_DATA_PARAM, csv_response, is_fragment_request, render
from app.extensions import db
from app.rbac.panel import access_context
from app.sandbox import twins
from app.users import service
from app.users.service import UserFilters

bp = Blueprint("users", __name__)
nav.register("Users", "users.index", "users.view", order=20)


@bp.route("/admin/users")
@permission_required("users.view")
def index():
    """Search, filters and keyset pages; HTMX swaps the results (live filter) or appends rows (load more)."""
    error, status = None, 200
    sort = sorting.parse(None, service.SORTS, service.DEFAULT_SORT)
    try:
        filters = UserFilters.parse(request.args)
        sort = sorting.parse_or_default(request.args.get("sort"), service.SORTS, service.DEFAULT_SORT)
        limit = parse_limit(request.args.get("limit"), default=25)
        page = service.search_users(db.session, filters, limit=limit, cursor=request.args.get("cursor") or None,
                                    sort=sort)
    except DomainError as err:
        filters, page, error, status, limit = UserFilters(), Page([], None, False), err.message, 422, 25
    next_url = None
    if page.has_more:
        next_url = url_for("users.index", q=filters.q or None, scope=filters.scope,
                           include_test=TEST_DATA_PARAM[filters.account],
                           sort=sort.param if sort.param != service.DEFAULT_SORT else None,
                           limit=limit if limit != 25 else None, cursor=page.next_cursor)
    block = "rows" if request.args.get("cursor") and is_fragment_request() else "results"
    return render("users/index.html", block=block, status=status, filters=filters, page=page, error=error,
                  next_url=next_url, paged=bool(request.args.get("cursor")), sort=sort)


@bp.route("/admin/users/export.csv")
@permission_required("users.view")
def export():
    """The filtered, sorted list as CSV, streamed (every row, not only the page shown)."""
    filters = UserFilters.parse(request.args)
    sort = sorting.parse_or_default(request.args.get("sort"), service.SORTS, service.DEFAULT_SORT)
    return csv_response("users.csv", ["id", "email", "first_name", "last_name", "kind", "world", "status",
                                      "created_at", "last_sign_in"], service.export_rows(db.session, filters, sort))


@bp.route("/admin/users/<int:user_id>")
@permission_required("users.view")
def detail(user_id: int):
    target = service.get_user(db.session, user_id)
    worlds = {"twin": twins.twin_of(db.session, target),
              "twin_of": db.session.get(type(target), target.twin_of_id) if target.twin_of_id else None}
    return render("users/detail.html", block="access", **worlds, **access_context(db.session, current_user, target))
