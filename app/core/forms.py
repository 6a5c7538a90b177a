"""One way to handle a form POST, and one rule for an audit reason.

handle_form() is what every view that takes a form POST does with it (the staff console, its
sign-in steps and the customers' /account pages):

1. validate the form (Flask-WTF; CSRF is checked by CSRFProtect before the view runs);
2. call the service (`action`), which writes through the session and raises a DomainError to refuse;
3. on a refusal: roll back what the action wrote (a savepoint), put the message on the field the error
   names (or the form's top error; a bare button has no form, so it is flashed) and re-render the
   page with what was typed (`again(form, status)`: 422, or 409: see error_status; a page with
   statuses of its own, a sign-in's 401, says so with `refused_status`);
   a permission the actor lacks is not a form error: it goes on to the 403 page naming it;
4. on success: **commit once**, then go where `success` says: a URL is a redirect (flashing
   `message`); for an HTMX fragment request the view's `fragment(result, message)` re-renders the
   swapped part, and without one the answer is HX-Redirect (a full page, never a page in a cell).

Where a transaction commits: the view, through this helper, once per request (an /api/v1 route:
the API layer, once). Services never commit; the exceptions are the payment steps that must be
durable before or after Stripe is called (billing collection, refunds, gateway customers, and the
steps of billing.changes that come before a charge or a refund), the audit row of a refused sign-in
and a wrong code counted toward the two-factor lockout, which must outlive the rollback, and jobs,
which own their own transactions.

Sudo resume (auth/resume.py) re-posts the typed values to the same URL, so a form handled here
completes after the code like any other POST.

Every endpoint that goes through here is recorded in HANDLED (tests walk the form POST rules and
check each one is).
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Response, flash, redirect, request
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from app.core.audit import REASON_MAX, require_reason
from app.core.errors import DomainError, PermissionDenied
from app.extensions import db

HANDLED: set[str] = set()  # endpoints whose POST went through handle_form (filled at request time)

Target = "str | Callable[[Any], str | Response]"


def lacks_permission(error: DomainError) -> bool:
    """The actor may not do this at all (a permission it lacks): the 403 page, not a form error.
    Other refusals of who may do what (yourself, your own request, a permission you would hand on
    without holding it) are answers about this form's values and shown on it."""
    return isinstance(error, PermissionDenied) and error.code == "permission_denied" and bool(error.permission)


def error_status(error: DomainError) -> int:
    """The status a refused form is re-rendered with: 409 for a conflict (a taken email or code,
    a state that does not allow the action), 422 for every other refusal (a 404 of an id the form
    carries, a 402 included). What the URL names is looked up before the form is handled, and is
    a 404 there; a bare button's action that finds its URL's target gone raises it as a 404 too."""
    return 409 if error.status == 409 else 422


class Posted:
    """A POST whose fields have no WTForms class (the service checks every one): what was typed,
    and the refusal by field, in the shape handle_form and the templates read."""

    def __init__(self, formdata=None):
        self.data = request.form if formdata is None else formdata
        self.errors: dict[str, list[str]] = {}
        self.form_errors: list[str] = []

    def validate_on_submit(self) -> bool:
        return True

    def get(self, name: str, default=None):
        return self.data.get(name, default)

    @property
    def error(self) -> dict | None:
        """The first refusal as {"field", "message"} (None: not refused)."""
        for field, messages in self.errors.items():
            return {"field": field, "message": messages[0]}
        return {"field": None, "message": self.form_errors[0]} if self.form_errors else None


def add_error(form, error: DomainError) -> None:
    """The message on the field the error names, else on the form's top errors."""
    if isinstance(form, Posted):
        if error.field:
            form.errors.setdefault(error.field, []).append(error.message)
        else:
            form.form_errors.append(error.message)
        return
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = list(field.errors) + [error.message]
    else:
        form.form_errors.append(error.message)


def _fragment_request() -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


def _go(url: str, message: str | None, category: str = "info") -> Response:
    if message:
        flash(message, category)
    if _fragment_request():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)


def form_errors(form) -> list[str]:
    """Every message of a form, the form's own first."""
    if form is None:
        return []
    return list(form.form_errors) + [e for name, errs in form.errors.items() if name is not None for e in errs]


def handle_form(form, action: Callable[[], Any], *, success, again: str | Callable[[Any, int], Response],
                message: str | Callable[[Any], str | None] | None = None,
                fragment: Callable[[Any, str | None], Response] | None = None, validate: bool = True,
                refused_status: Callable[[DomainError], int] | None = None) -> Response:
    """Validate `form` (None: a bare button), run `action()`, commit once, then redirect or re-render.

    success: a URL, or a callable(result) giving a URL or a whole Response (run after the commit,
      so it may enqueue a job that reads what was written).
    message: flashed on success (a string, or a callable(result)); None flashes nothing.
    again(form, status): the page re-rendered with the form's errors and typed values; or a URL
      (a button on a list or a queue row): the errors are flashed and the browser goes there.
    fragment(result, message): the HTMX answer on success, when the form is posted by htmx.
    validate=False: the form only carries the fields and the service checks every one of them
      (its messages are the ones shown); CSRF is still checked by CSRFProtect.
    refused_status(error): the status `again` re-renders a refusal with, when the page has its own
      (a refused sign-in is a 401, a locked one a 403; default error_status).
    """
    HANDLED.add(request.endpoint)
    if form is not None and validate and not form.validate_on_submit():
        return _again(again, form, 422)  # nothing was written
    savepoint = db.session.begin_nested()  # a refusal undoes exactly what the action wrote
    try:
        result = action()
    except DomainError as error:
        if savepoint.is_active:
            savepoint.rollback()
        else:  # a payment step committed on the way: undo what came after it
            db.session.rollback()
        if lacks_permission(error):
            raise  # the 403 page names the missing permission
        if form is None and error.status == 404:
            raise  # a bare button's target is named by its URL: gone is the 404 page, not a form error
        if form is None or isinstance(again, str):
            flash(error.message, "error")
        else:
            add_error(form, error)
        return _again(again, form, (refused_status or error_status)(error), flashed=True)
    if savepoint.is_active:
        savepoint.commit()
    db.session.commit()
    text = message(result) if callable(message) else message
    if fragment is not None and _fragment_request():
        return fragment(result, text)
    target = success(result) if callable(success) else success
    if isinstance(target, Response):
        if text:
            flash(text, "info")
        return target
    return _go(target, text)


def _again(again, form, status: int, flashed: bool = False) -> Response:
    if not isinstance(again, str):
        return again(form, status)
    if not flashed:
        for message in form_errors(form) or ["Check the form."]:
            flash(message, "error")
    return _go(again, None)


def refused_page(form, status: int) -> Response:
    """A button with no page of its own to re-render (revoke from a list): the refusal on the error page."""
    from app.core.web import render

    messages = form_errors(form)
    return render("errors/error.html", message=messages[0] if messages else "Check the form.", status=status)


def back(default: str) -> str:
    """Where a bare button goes back to: the page it was on (same site), else `default`."""
    from urllib.parse import urlparse

    referrer = request.referrer or ""
    parsed = urlparse(referrer)
    if referrer and parsed.netloc in ("", request.host) and parsed.path.startswith("/admin"):
        return referrer
    return default


class ReasonRequired:
    """The form side of require_reason(): the same rule and message before the service is called."""

    def __init__(self, minimum: int = 1, field: str = "reason"):
        self.minimum, self.field = minimum, field
        self.field_flags = {"required": True}

    def __call__(self, form, field) -> None:
        try:
            require_reason(field.data, minimum=self.minimum, field=self.field)
        except DomainError as error:
            raise ValidationError(error.message) from None


def reason_field(label: str = "Reason", *, minimum: int = 1, textarea: bool = False, required: bool = True,
                 description: str | None = None, **kwargs):
    """The audit reason of a staff form: required (at least `minimum` characters) unless told
    otherwise, at most REASON_MAX either way."""
    from wtforms.validators import Length, Optional

    validators = [ReasonRequired(minimum)] if required else [Optional(), Length(max=REASON_MAX)]
    kind = TextAreaField if textarea else StringField
    return kind(label, validators=validators, description=description, **kwargs)
