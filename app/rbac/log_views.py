"""The audit log and the role change log: filters, keyset pages, CSV export of the filtered rows."""
from __future__ import annotations

from flask import Blueprint, request, url_for

from app.auth.guards import permission_required
from app.core import nav
from app.core.errors import DomainError
from app.core.pagination import Page, parse_limit
from app.core.labels import label
from app.core.web import csv_response, include_test_data, is_fragment_request, render
from app.extensions import db
from app.rbac import logs
from app.rbac.forms import LogFilterForm, SelectChoice

bp = Blueprint("logs", __name__)
nav.register("Role changes", "rbac.logs.changes", "roles.view_audit_log", order=85)
nav.register("Audit log", "rbac.logs.audit", "roles.view_audit_log", order=90)


def _filters(actions) -> tuple[LogFilterForm, logs.LogFilters | None]:
    """Parse the GET filters; None when they are invalid (the form then holds the messages)."""
    form = LogFilterForm(formdata=request.args)
    form.action.choices = [SelectChoice("", "Any action")] + [SelectChoice(a, label(a)) for a in actions]
    include_test = include_test_data()
    if not form.validate():
        return form, None
    if form.action.data and form.action.data not in actions:
        form.action.errors = ["Pick an action from the list."]
        return form, None
    filters = logs.LogFilters(actor=(form.actor.data or "").strip(), target=(form.target.data or "").strip(),
                              action=form.action.data or "", date_from=form.date_from.data,
                              date_to=form.date_to.data, include_test=include_test)
    try:
        return form, filters.check()
    except DomainError as error:
        getattr(form, error.field).errors = [error.message]
        return form, None


def _query_args(filters: logs.LogFilters) -> dict:
    return {"actor": filters.actor or None, "target": filters.target or None, "action": filters.action or None,
            "date_from": filters.date_from.isoformat() if filters.date_from else None,
            "date_to": filters.date_to.isoformat() if filters.date_to else None,
            "include_test": "1" if filters.include_test else "0"}


def _log_screen(template: str, endpoint: str, actions, page_func, sort=None):
    """`sort` (the audit log's) travels in every link the screen makes: next page, export, headers."""
    form, filters = _filters(actions)
    extra = {"sort": sort} if sort else {}
    status, page, next_url, export_url = 200, Page([], None, False), None, None
    if filters is None:
        status = 422
    else:
        limit = parse_limit(request.args.get("limit"), default=50)
        page = page_func(db.session, filters, limit=limit, cursor=request.args.get("cursor") or None, **extra)
        # The default order is left out of the links (the URL stays as short as the filters).
        args = _query_args(filters) | ({"sort": sort.param} if sort and sort.param != logs.AUDIT_DEFAULT_SORT else {})
        if page.has_more:
            next_url = url_for(endpoint, cursor=page.next_cursor, limit=limit if limit != 50 else None, **args)
        export_url = url_for(endpoint + "_csv", **args)
    block = "rows" if request.args.get("cursor") and is_fragment_request() else "results"
    return render(template, block=block, status=status, form=form, page=page, next_url=next_url,
                  export_url=export_url, include_test=filters.include_test if filters else include_test_data(),
                  paged=bool(request.args.get("cursor")), sort=sort)


def _export(filename: str, actions, header, rows_func, **extra):
    form, filters = _filters(actions)
    if filters is None:
        messages = [e for errs in form.errors.values() for e in errs]
        raise DomainError("invalid_filters", " ".join(messages) or "The filters are not valid.")
    return csv_response(filename, header, rows_func(db.session, filters, **extra))


@bp.route("/admin/audit")
@permission_required("roles.view_audit_log")
def audit():
    return _log_screen("rbac/audit.html", "rbac.logs.audit", logs.audit_actions(db.session), logs.audit_page,
                       sort=logs.audit_sort(request.args.get("sort")))


@bp.route("/admin/audit/export.csv")
@permission_required("roles.view_audit_log")
def audit_csv():
    return _export("audit-log.csv", logs.audit_actions(db.session), logs.AUDIT_HEADER, logs.audit_rows,
                   sort=logs.audit_sort(request.args.get("sort")))


@bp.route("/admin/roles/changes")
@permission_required("roles.view_audit_log")
def changes():
    return _log_screen("rbac/changes.html", "rbac.logs.changes", logs.CHANGE_ACTIONS, logs.change_page)


@bp.route("/admin/roles/changes/export.csv")
@permission_required("roles.view_audit_log")
def changes_csv():
    return _export("role-changes.csv", logs.CHANGE_ACTIONS, logs.CHANGE_HEADER, logs.change_rows)
