"""The desktop app's sign-in, in Chromium (issue 17): the app opens the authorization URL with a
PKCE challenge; a new customer signs up and consents; the code arrives at the app's local
redirect URI; the app exchanges it, reads the balance (the free tier's 100 credits), refreshes
and revokes. The loopback redirect is caught by the browser (page.route) as the app's own
listener would, so no port is taken."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from urllib.parse import parse_qs, urlencode, urlparse
from urllib.request import Request, urlopen
from urllib.error import HTTPError

REDIRECT = "http://localhost:3000/callback"


def _post(base: str, path: str, form: dict) -> tuple[int, dict]:
    request = Request(base + path, data=urlencode(form).encode(), method="POST",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _get(base: str, path: str, token: str) -> tuple[int, dict]:
    request = Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def test_desktop_app_signs_up_a_customer_with_pkce_and_uses_refreshes_and_revokes_its_token(page, live_server):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(12)
    received: list[str] = []

    def callback(route):  # the desktop app's loopback listener
        received.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>You can return to the app.</p>")

    page.route(REDIRECT + "**", callback)
    page.goto("/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": "desktop-app-test", "redirect_uri": REDIRECT, "state": state,
        "scope": "credits:read", "code_challenge": challenge, "code_challenge_method": "S256"}))
    page.wait_for_url("**/account/signin**")
    page.click("text=Create an account")
    email = f"desk-{uuid.uuid4().hex[:8]}@example.com"
    page.fill("input[name=name]", "Desk Top")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "Desktop-Pass-2026")
    page.click("button[type=submit]")
    page.wait_for_url("**/oauth/authorize**")
    assert "Allow Rephlo Desktop App (Test)" in page.locator("h1").inner_text()
    page.click("button[value=allow]")
    page.wait_for_url(REDIRECT + "**")
    query = parse_qs(urlparse(received[-1]).query)
    assert query["state"] == [state]

    status, tokens = _post(live_server, "/oauth/token", {
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
        "client_id": "desktop-app-test", "code_verifier": verifier})
    assert status == 200, tokens
    status, balance = _get(live_server, "/api/v1/credits/balance", tokens["access_token"])
    assert status == 200 and balance["total"] == 100

    status, refreshed = _post(live_server, "/oauth/token", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "desktop-app-test"})
    assert status == 200 and refreshed["refresh_token"] != tokens["refresh_token"]
    assert _get(live_server, "/api/v1/credits/balance", refreshed["access_token"])[0] == 200

    status, _ = _post(live_server, "/oauth/revoke", {"token": refreshed["access_token"],
                                                     "client_id": "desktop-app-test"})
    assert status == 200
    status, error = _get(live_server, "/api/v1/credits/balance", refreshed["access_token"])
    assert status == 401 and error["error"]["code"] == "access_token_revoked"
    # The test app worked with the customer's test twin: the customer's own page is untouched.
    page.goto("/account/")
    assert "Free" in page.locator("#plan").inner_text() and "100" in page.locator("#balance").inner_text()
    assert page.console_errors == []
