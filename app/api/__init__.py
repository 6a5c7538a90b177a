"""The /api/v1 blueprint. Each domain attaches its routes from its own api.py."""
from __future__ import annotations

import importlib

from flask import Blueprint, Flask, request

from app.core.api_paths import API_PREFIX, is_api_request  # noqa: F401  (the one test, re-exported)

api_bp = Blueprint("api", __name__, url_prefix=API_PREFIX + "v1")

# Domain modules that define routes on api_bp; imported once by load_routes().
ROUTE_MODULES = [
    "app.api.health",
    "app.ops.api",
    "app.api.openapi",
    "app.api.oauth",
    "app.sandbox.api",
    "app.licensing.api",
    "app.credits.api",
    "app.credits.api_admin",
    "app.billing.api",
    "app.coupons.api",
    "app.accounts.api",
    "app.billing.api_purchases",
]


def load_routes() -> Blueprint:
    for module in ROUTE_MODULES:
        importlib.import_module(module)
    return api_bp


def skip_limiter_middleware(app: Flask, limiter) -> None:
    """Flask-Limiter's before_request hook applies default, application and blueprint limits;
    the API has none (a key's rate limit is auth.meter(); @limiter.limit on a route is checked
    by its decorator, which still runs). Evaluating nothing cost ~4% of a metering request's
    CPU (py-spy), so the hook returns at once for the API blueprint. Flask-Limiter 4 has no public
    way to do this: the private hook is pinned in pyproject.toml and checked by
    tests/core/test_library_internals.py."""
    manager = limiter.limit_manager
    if manager.default_limits or manager.application_limits or getattr(limiter, "_meta_limits", None):
        return  # then it has work for the API too: keep it
    hooks = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit
    if check not in hooks:
        return

    def check_unless_api():
        if request.blueprint != api_bp.name:
            return check()
        return None

    hooks[hooks.index(check)] = check_unless_api
