"""Sudo resume: the form that asked for sudo is kept (its path and typed values, never a secret)
so that after the code it completes in one click, or by itself with JavaScript, instead of being
lost with the reason the person typed (issue 18: a refund vanished behind the sudo prompt)."""
from __future__ import annotations

import json

from flask import request, session

from app.core import clock

KEY = "auth_sudo_pending"
TTL_SECONDS = 600
MAX_BYTES = 2000  # the session is a cookie: long forms are simply typed again
SECRET_HINTS = ("password", "secret", "totp", "recovery", "api_key", "token")


def remember() -> None:
    """Keep the POST being refused for want of sudo (replacing any older one)."""
    session.pop(KEY, None)
    if request.method != "POST" or request.files:
        return
    fields = [[k, v] for k, v in request.form.items(multi=True) if k != "csrf_token"]
    if any(hint in k.lower() for k, _ in fields for hint in SECRET_HINTS):
        return
    if len(json.dumps(fields)) > MAX_BYTES:
        return
    session[KEY] = {"path": request.path, "fields": fields, "until": clock.now().timestamp() + TTL_SECONDS}


def take() -> dict | None:
    """The kept action, once: None when there is none or it is too old."""
    pending = session.pop(KEY, None)
    if not pending or pending.get("until", 0) < clock.now().timestamp():
        return None
    if not str(pending.get("path", "")).startswith("/admin/"):
        return None
    return pending


def peek() -> dict | None:
    pending = session.get(KEY)
    return pending if pending and pending.get("until", 0) >= clock.now().timestamp() else None
