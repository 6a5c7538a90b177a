"""Rendering and error plumbing shared by every admin screen.

render() serves the whole page, or only the named block for a targeted HTMX request,
from the page's own template so page and fragment cannot drift apart.
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from flask import Flask, Response, flash, g, render_template, request, stream_with_context
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import HTTPException

from app.core import testmode
from app.core.api_paths import is_api_request
from app.core.flask_app import add_fixed_headers
from app.core.errors import DomainError, PermissionDenied
from app.core.port import Port
from app.extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JsonErrors:
    """The JSON answers to an API request's failures. Their format is the API's (app/api/errors.py);
    create_app plugs it in with use_json_errors(), since core imports no domain."""

    domain: Callable[[DomainError], Response]
    http: Callable[[HTTPException], Response]
    status: Callable[..., Response]  # (status, type, code, message, param=None, headers=None)


json_errors: Port[JsonErrors] = Port("JSON error format")
use_json_errors = json_errors.plug


def is_fragment_request() -> bool:
    """An HTMX swap of part of the page; a boosted link and a history restore (back to a URL a
    live filter pushed, not in htmx's cache) get the whole page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(template: str, block: str | None = None, status: int = 200, **context) -> Response:
    """`status` is the HTTP status only: a filter named status must travel under another name
    (a string here once became the status line, CR/LF and all: response splitting)."""
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise TypeError(f"render() status must be an HTTP status code, not {status!r}")
    if block and is_fragment_request():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = Response(body, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def include_test_data() -> bool:
    """The viewer's 'include test data' toggle (query string wins, then the session)."""
    from flask import session

    raw = request.args.get("include_test")
    if raw is not None:
        session["include_test"] = raw in ("1", "true", "on")
    return bool(session.get("include_test", False))


# The lists' test-data filter: one query parameter (include_test) and one label everywhere.
# Its value in the URL for each scope a list filters by, and back.
TEST_DATA_PARAM = {"production": "0", "all": "1", "test": "only"}


def test_data_scope(args, default: str | None = None) -> str:
    """production | all | test from ?include_test=0|1|only; absent, `default` or the viewer's
    'include test data' toggle (so a list opens the way the banner says)."""
    raw = (args.get("include_test") or "").strip().lower()
    if raw == "only":
        return "test"
    if raw in ("1", "true", "on"):
        return "all"
    if raw in ("0", "false", "off"):
        return "production"
    return default or ("all" if include_test_data() else "production")



def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """Stream a CSV export; cells starting with = + - @ are quoted against formula injection.

    The rows are read while streaming, inside the request context (so they may query the database).
    """

    def clean(value):
        text = "" if value is None else str(value)
        return "'" + text if text[:1] in ("=", "+", "-", "@") else text

    def generate():
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        yield buf.getvalue()
        for row in rows:
            buf.seek(0)
            buf.truncate()
            writer.writerow([clean(v) for v in row])
            yield buf.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csrf_fields_without_id() -> None:
    """A page with several forms renders several CSRF fields: without an id, no id repeats."""
    from wtforms.csrf.core import CSRFTokenField

    if getattr(CSRFTokenField, "_rephlo_no_id", False):
        return
    original = CSRFTokenField.__call__

    def render(self, **kwargs):
        kwargs.setdefault("id", False)
        return original(self, **kwargs)

    CSRFTokenField.__call__ = render
    CSRFTokenField._rephlo_no_id = True


def init_app(app: Flask) -> None:
    from app.core.labels import label, words

    _csrf_fields_without_id()
    from app.core.money import fmt, usd

    app.jinja_env.filters["money"] = fmt
    app.jinja_env.filters["usd"] = usd
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["words"] = words
    app.jinja_env.globals["include_test_data"] = include_test_data
    app.jinja_env.globals["test_data_param"] = TEST_DATA_PARAM

    @app.template_filter("dt")
    def _dt(value):
        """A time as people read it; an ISO string (a time kept in a JSON detail) too."""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")

    @app.before_request
    def _reset_test_mode():
        testmode.clear()

    @app.after_request
    def _test_mode_header(response):
        if testmode.active():
            add_fixed_headers(response, (("X-Test-Mode", "true"),))
        return response

    @app.teardown_request
    def _clear_test_mode(exc):
        testmode.clear()

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):
        db.session.rollback()
        if is_api_request():
            return json_errors().domain(error)
        if isinstance(error, PermissionDenied):
            return render("errors/403.html", message=error.message, permission=error.permission, status=403)
        flash(error.message, "error")
        return render("errors/error.html", message=error.message, status=error.status)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if is_api_request():
            return json_errors().http(error)
        if error.code == 403:
            return render("errors/403.html", message=error.description, permission=g.get("missing_permission"),
                          status=403)
        return render("errors/error.html", message=error.description, status=error.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        if is_api_request():
            return json_errors().status(500, "api_error", "internal_error", "Something went wrong on our side.")
        return render("errors/error.html", message="Something went wrong on our side.", status=500)
