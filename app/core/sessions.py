"""The signed cookie sessions, for the browser only: one for staff, one for customers.

Opening Flask's cookie session builds a signing serializer on every request. The JSON API
authenticates with bearer secrets and never reads or sets a cookie, so requests under /api/
get an empty session that is never saved: no Set-Cookie there, and a cookie sent along is
not read.

Customers' pages (/account/, the OAuth authorization page) use a cookie of their own, signed
with another salt, and never read the staff cookie; staff pages never read the customer's.
So neither kind of session can open the other's pages (DESIGN.md §1), and signing out of
one leaves the other alone.
"""
from __future__ import annotations

from flask import request
from flask.sessions import SecureCookieSessionInterface

from app.core.api_paths import is_api_request

CUSTOMER_PREFIXES = ("/account/", "/oauth/authorize")
CUSTOMER_COOKIE = "rephlo_account"


def is_customer_path(path: str) -> bool:
    return path == "/account" or path.startswith(CUSTOMER_PREFIXES)


class _CustomerCookie(SecureCookieSessionInterface):
    salt = "rephlo-customer-session"

    def get_cookie_name(self, app) -> str:
        return CUSTOMER_COOKIE


_customer = _CustomerCookie()


class BrowserSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if is_api_request():
            return self.session_class()
        if is_customer_path(request.path):
            return _customer.open_session(app, request)
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if is_api_request():
            return None
        if is_customer_path(request.path):
            return _customer.save_session(app, session, response)
        return super().save_session(app, session, response)
