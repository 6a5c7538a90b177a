"""Is this request for the JSON API? One answer, asked by the session cookie, the error pages,
the security headers and the outage page.

A path prefix, not request.blueprint: the session is opened before the URL is matched, and an
unknown /api/ URL (no blueprint) is still answered in JSON. app/api's blueprint is mounted under
this prefix (checked where it is defined).
"""
from __future__ import annotations

from app.core import current

API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


def is_api_request() -> bool:
    return is_api_path(current.request().path)
