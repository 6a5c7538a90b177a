"""Who is acting and from where, for audit rows; safe outside a request."""
from __future__ import annotations

from flask import has_request_context, request


def client_ip() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr


def user_agent() -> str | None:
    if not has_request_context():
        return None
    return (request.user_agent.string or "")[:500] or None
