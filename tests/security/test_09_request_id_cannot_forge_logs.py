"""Issue 15 item 9: X-Request-Id went into every log line as sent (up to 64 characters), so a
client could forge log lines (newlines, brackets, spaces, escape codes). Only a safe id is kept;
anything else gets a new one."""
from __future__ import annotations

import logging
import re

import pytest

NEW_ID = re.compile(r"req_[0-9a-f]{20}")


@pytest.mark.parametrize("sent", [
    "abc\n2026-01-01 INFO app.auth [req=x user=1 test=False] admin signed in",
    "abc\r\nX-Injected: 1",
    "ok] user=42 test=False] forged",
    "\x1b[31mred",
    "x" * 65,
    "é-not-ascii",
    " ",
])
def test_an_unsafe_request_id_is_replaced(client, caplog, sent):
    caplog.set_level(logging.INFO, logger="app.access")
    response = client.get("/api/v1/health", environ_overrides={"HTTP_X_REQUEST_ID": sent})
    assert NEW_ID.fullmatch(response.headers["X-Request-Id"])
    logged = [r for r in caplog.records if r.name == "app.access"]
    assert logged and all(r.request_id == response.headers["X-Request-Id"] for r in logged)
    assert not sent.strip() or sent not in caplog.text


@pytest.mark.parametrize("sent", ["client-chosen-1", "3f2b6c1e-8d1a-4c55-9b1e-0e6d2a7c9f10", "req_0123456789abcdef0123",
                                  "a.b:c_d", "x" * 64])
def test_a_safe_request_id_is_kept_for_tracing(client, sent):
    response = client.get("/api/v1/health", headers={"X-Request-Id": sent})
    assert response.headers["X-Request-Id"] == sent
