"""The cookie session is the browser's: the JSON API neither reads nor sets it."""
from __future__ import annotations


def test_api_requests_ignore_and_never_set_the_staff_cookie(login_as):
    client = login_as("admin")
    api = client.get("/api/v1/credits/balance")
    assert api.status_code == 401 and api.json["error"]["code"] == "missing_api_key"  # the cookie is no credential
    assert "Set-Cookie" not in api.headers
    health = client.get("/api/v1/health")
    assert "Set-Cookie" not in health.headers
    screen = client.get("/admin")
    assert screen.status_code == 200  # the browser's session is untouched
    assert "Set-Cookie" in screen.headers  # the idle timer is refreshed on screens
