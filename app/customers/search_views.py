"""The top bar's global search: a page of grouped results, or the dropdown fragment for HTMX."""
from __future__ import annotations

from flask import Blueprint, request

from app.auth.guards import permission_required
from app.core.errors import DomainError
from app.core.web import is_fragment_request, render
from app.customers import search as service
from app.extensions import db

bp = Blueprint("search", __name__)


@bp.get("/admin/search")
@permission_required("users.view")
def index():
    error, status = None, 200
    try:
        # `find` from the top bar (pages keep `q` for their own filters), `q` from the search page
        results = service.search(db.session, request.args.get("find") or request.args.get("q"))
    except DomainError as err:
        results, error, status = service.Results(""), err.message, 422
    template = "customers/_search_results.html" if is_fragment_request() else "customers/search.html"
    return render(template, results=results, error=error, status=status)
