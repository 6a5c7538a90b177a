"""The customer's browser session (its own cookie: core/sessions.py) and the guard of customer pages.

The session holds "customer" = "<id>:<session_version>": bumping the version (password reset,
sign out everywhere) ends every session at once. Staff accounts never get a customer session.
"""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlparse

from flask import g, redirect, request, session, url_for

from app.core import clock, testmode
from app.extensions import db
from app.users.models import User

SESSION_CUSTOMER = "customer"
SESSION_STARTED = "customer_started_at"


def sign_in(user: User) -> None:
    session.clear()  # nothing of the anonymous session survives sign-in
    session[SESSION_CUSTOMER] = f"{user.id}:{user.session_version}"
    session[SESSION_STARTED] = clock.now().timestamp()


def sign_out() -> None:
    session.clear()


def current_customer() -> User | None:
    if "customer" in g:
        return g.customer
    customer = None
    raw = session.get(SESSION_CUSTOMER, "")
    try:
        user_id, version = (int(part) for part in raw.split(":"))
    except ValueError:
        user_id = version = None
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is not None and user.session_version == version and user.is_active and not user.is_staff:
            customer = user
    if customer is None and raw:
        session.pop(SESSION_CUSTOMER, None)
    g.customer = customer
    if customer is not None:
        g.log_user_id = customer.id
    return customer


def safe_next(target: str | None, default: str | None = None) -> str:
    """A local path only (an OAuth authorization URL comes back here after sign-in)."""
    if target and urlparse(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return default or url_for("accounts.home")


def customer_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        customer = current_customer()
        if customer is None:
            return redirect(url_for("accounts.sign_in", next=request.full_path if request.method == "GET" else None))
        if customer.is_test:
            testmode.activate()  # a test account's own actions are test mode (docs/test-mode.md)
        return view(*args, **kwargs)

    return wrapped
