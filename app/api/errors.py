"""Stripe-style error objects for every API failure."""
from __future__ import annotations

from flask import g, jsonify
from werkzeug.exceptions import HTTPException

from app.core.errors import DomainError

# 409 is a conflict with the data (email taken, not a test account): invalid_request_error, as
# Stripe; idempotency_error is only for Idempotency-Key misuse, which api/idempotency.py says itself.
_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
          429: "rate_limit_error", 402: "card_error"}


def api_error(status: int, type_: str, code: str, message: str, param: str | None = None, headers=None):
    body = {"error": {"type": type_, "code": code, "message": message, "param": param},
            "request_id": g.get("request_id")}
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(error: DomainError):
    type_ = error.type if error.type != "invalid_request_error" else _TYPES.get(error.status, error.type)
    if error.status in (400, 404, 422):
        type_ = "invalid_request_error"
    return api_error(error.status, type_, error.code, error.message, error.field)


def http_error_response(error: HTTPException):
    status = error.code or 500
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
             429: "rate_limited"}
    headers = {}
    if status == 429:
        retry = getattr(error, "retry_after", None)
        headers["Retry-After"] = str(retry or 60)
    message = error.description if status != 404 else "Unrecognized request URL."
    return api_error(status, _TYPES.get(status, "invalid_request_error"), codes.get(status, "error"),
                     message, None, headers)
