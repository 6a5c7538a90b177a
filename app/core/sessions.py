"""The signed cookie session, for the browser only.

Opening Flask's cookie session builds a signing serializer on every request. The JSON API
authenticates with bearer secrets and never reads or sets a cookie, so requests under /api/
get an empty session that is never saved: no Set-Cookie there, and a staff cookie sent
along is not read.
"""
from __future__ import annotations

from flask import request
from flask.sessions import SecureCookieSessionInterface

API_PREFIX = "/api/"


class BrowserSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if request.path.startswith(API_PREFIX):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if request.path.startswith(API_PREFIX):
            return None
        return super().save_session(app, session, response)
