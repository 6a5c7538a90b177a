"""The /api/v1 blueprint. Each domain attaches its routes from its own api.py."""
from __future__ import annotations

import importlib

from flask import Blueprint, Flask

from app.core.api_paths import API_PREFIX, is_api_request  # noqa: F401  (API_PREFIX re-exported)

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


def skip_browser_hooks(app: Flask, *, limiter, login_manager) -> None:
    """The hooks the browser extensions add for every request do nothing for the API but cost
    ~9% of a keyless licence validation's instructions (callgrind): CSRF (the blueprint is
    exempt: bearer secrets, no cookies), Flask-Login's remember cookie (the API has no session),
    and Flask-Limiter's request check, header injection and context release (the API's limits are
    its own: auth.meter() and the per-address limits). Each is wrapped to return at once for an
    /api/ request. A hook is known by its owner through Flask's public hook lists: a bound method
    of the Limiter or the LoginManager (or a partial of one), or a function of flask_wtf.csrf.
    Flask-Limiter's hooks stay on for the API when it has default, application or meta limits
    (then they have work there)."""
    manager = limiter.limit_manager
    limiter_has_api_work = bool(manager.default_limits or manager.application_limits
                                or getattr(limiter, "_meta_limits", None))
    owners = {id(login_manager)} | (set() if limiter_has_api_work else {id(limiter)})

    def browser_only(hook) -> bool:
        target = getattr(hook, "func", hook)  # a functools.partial: its function and first argument
        owner = getattr(hook, "__self__", None) or getattr(target, "__self__", None) or \
            (hook.args[0] if getattr(hook, "args", None) else None)
        return id(owner) in owners or getattr(target, "__module__", "") == "flask_wtf.csrf"

    for hooks, passes_response in ((app.before_request_funcs, False), (app.after_request_funcs, True),
                                   (app.teardown_request_funcs, False)):
        funcs = hooks.get(None, [])
        funcs[:] = [_unless_api(hook, passes_response) if browser_only(hook) else hook for hook in funcs]


def _unless_api(hook, passes_response: bool):
    """`hook`, returning at once for an /api/ request: the response unchanged for an after-request
    hook, None for the others."""
    if passes_response:
        def unless_api(response):
            if is_api_request():
                return response
            return hook(response)
    else:
        def unless_api(*args):
            if is_api_request():
                return None
            return hook(*args)

    unless_api.skips_api, unless_api.__wrapped__ = True, hook
    return unless_api
