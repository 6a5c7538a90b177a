"""Security headers on every response: CSP with a per-request nonce, no framing, no sniffing."""
from __future__ import annotations

import secrets

from flask import Flask, g

from app.core import current
from app.core.api_paths import is_api_path
from app.core.flask_app import add_fixed_headers


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


# JSON answers render nothing: the strictest policy, and no nonce to draw for every API request.
API_HEADERS = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
               "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
_API_HEADER_PAIRS = tuple(API_HEADERS.items())
_API_HEADER_PAIRS_TLS = (*_API_HEADER_PAIRS, ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))


def trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For/-Proto from TRUSTED_PROXIES proxies (request.remote_addr, hence the
    limiter's keys and audit rows, becomes the client; request.is_secure the proxy's https)."""
    hops = app.config.get("TRUSTED_PROXIES") or 0
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response):
        req = current.request()
        if is_api_path(req.path) and "csp_nonce" not in current.g():
            # added as they are: constants no API answer carries already (Headers.set() scans the
            # whole list for each name, Headers.add() checks each value: core/flask_app.py)
            add_fixed_headers(response, _API_HEADER_PAIRS_TLS if req.is_secure else _API_HEADER_PAIRS)
            return response
        nonce = csp_nonce()
        # The OAuth consent form redirects to the client's registered URI: allowed there only.
        form_action = " ".join(["'self'", *g.get("form_action_extra", ())])
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; "
            "img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            f"form-action {form_action}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if req.is_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if req.path.startswith(("/admin", "/auth", "/account", "/oauth")):
            response.headers["Cache-Control"] = "no-store"
        return response
