"""The /api/v1 blueprint. Each domain attaches its routes from its own api.py."""
from __future__ import annotations

import importlib

from flask import Blueprint

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Domain modules that define routes on api_bp; imported once by load_routes().
ROUTE_MODULES = [
    "app.api.health",
    "app.ops.api",
    "app.api.openapi",
    "app.api.oauth",
    "app.testdata.api",
    "app.licensing.api",
    "app.credits.api",
    "app.credits.api_admin",
    "app.billing.api",
    "app.coupons.api",
]


def load_routes() -> Blueprint:
    for module in ROUTE_MODULES:
        importlib.import_module(module)
    return api_bp
