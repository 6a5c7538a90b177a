"""The authorization-code grant with PKCE (RFC 6749, 7636, 7009, 8414), refused cases included.

Each refusal answers the RFC's error and issues nothing (no token row is added)."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import func, select

from app.accounts.models import Consent
from app.core import clock
from app.api.models import OAuthToken
from tests.accounts.conftest import https_client, pkce_pair

DESKTOP, DESKTOP_URI = "desktop-app-test", "http://localhost:3000/callback"
POC, POC_URI, POC_SECRET = "poc-client-test", "http://localhost:8080/oauth/callback", "test-secret-poc-client-67890"


def _authorize_url(client_id=DESKTOP, redirect_uri=DESKTOP_URI, challenge=None, state="st-123", **extra) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
              "code_challenge": challenge, "code_challenge_method": "S256", "scope": "credits:read credits:write",
              **extra}
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def _code(browser, url: str) -> dict:
    """Consent on the page (or straight through when remembered); the query the client receives."""
    response = browser.get(url)
    if response.status_code == 200:
        response = browser.post(url, data={"decision": "allow"})
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlparse(response.headers["Location"])
    return {"uri": f"{location.scheme}://{location.netloc}{location.path}",
            **{k: v[0] for k, v in parse_qs(location.query).items()}}


def _exchange(http, code, verifier, client_id=DESKTOP, redirect_uri=DESKTOP_URI, **extra):
    return http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                            "redirect_uri": redirect_uri, "code_verifier": verifier, **extra})


def _tokens(session) -> int:
    return session.scalar(select(func.count()).select_from(OAuthToken))


@pytest.fixture
def tokens(app, clients, customer_client):
    """A full desktop flow: the token response and the verifier."""
    verifier, challenge = pkce_pair()
    got = _code(customer_client, _authorize_url(challenge=challenge))
    assert got["uri"] == DESKTOP_URI and got["state"] == "st-123"
    response = _exchange(https_client(app), got["code"], verifier)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_desktop_flow_gives_a_short_lived_token_that_reads_the_customers_test_twin_balance(app, tokens, customer):
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert tokens["scope"] == "credits:read credits:write" and tokens["refresh_token"].startswith("rph_ort_")
    api = https_client(app)
    response = api.get("/api/v1/credits/balance", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200, response.get_json()
    # A test client acts as the production customer's test twin, funded with the free tier's credits.
    assert response.headers["X-Test-Mode"] == "true" and response.get_json()["total"] == 100
    scope = api.get("/api/v1/subscription", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert scope.status_code == 403 and scope.get_json()["error"]["code"] == "insufficient_scope"


def test_consent_is_remembered_per_client(app, session, clients, customer_client, customer, tokens):
    assert session.scalar(select(Consent.scopes).where(Consent.user_id == customer.id)) == ["credits:read",
                                                                                             "credits:write"]
    _, challenge = pkce_pair()
    again = customer_client.get(_authorize_url(challenge=challenge))
    assert again.status_code == 302 and "code=" in again.headers["Location"]
    more = customer_client.get(_authorize_url(challenge=challenge, scope="credits:read licenses:write"))
    assert more.status_code == 200 and "licenses:write" in more.get_data(as_text=True)


def test_refresh_rotates_and_reuse_revokes_the_family(app, session, tokens):
    http = https_client(app)
    refresh = {"grant_type": "refresh_token", "client_id": DESKTOP, "refresh_token": tokens["refresh_token"]}
    rotated = http.post("/oauth/token", data=refresh)
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["refresh_token"] != tokens["refresh_token"] and new["access_token"] != tokens["access_token"]
    count = _tokens(session)
    reuse = http.post("/oauth/token", data=refresh)
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant" and _tokens(session) == count
    # The family is revoked: the newest tokens stop working too.
    api = https_client(app).get("/api/v1/credits/balance", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert api.status_code == 401 and 'error="invalid_token"' in api.headers["WWW-Authenticate"]
    again = http.post("/oauth/token", data={**refresh, "refresh_token": new["refresh_token"]})
    assert again.get_json()["error"] == "invalid_grant"


def test_revocation_rfc7009_ends_the_token_and_unknown_tokens_answer_200(app, tokens):
    http = https_client(app)
    assert http.post("/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": DESKTOP,
                                            "token_type_hint": "refresh_token"}).status_code == 200
    api = http.get("/api/v1/credits/balance", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "access_token_revoked"
    refresh = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": DESKTOP,
                                              "refresh_token": tokens["refresh_token"]})
    assert refresh.get_json()["error"] == "invalid_grant"
    assert http.post("/oauth/revoke", data={"token": "rph_oat_unknown", "client_id": DESKTOP}).status_code == 200


def test_expired_access_token_is_refused(app, tokens):
    clock.freeze(clock.now() + timedelta(seconds=901))
    try:
        api = https_client(app).get("/api/v1/credits/balance",
                                    headers={"Authorization": f"Bearer {tokens['access_token']}"})
    finally:
        clock.reset()
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "access_token_expired"
    assert 'error="invalid_token"' in api.headers["WWW-Authenticate"]


def test_wrong_verifier_is_invalid_grant_and_the_code_stays_unused(app, session, clients, customer_client):
    verifier, challenge = pkce_pair()
    got = _code(customer_client, _authorize_url(challenge=challenge))
    count = _tokens(session)
    wrong = _exchange(https_client(app), got["code"], pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant" and _tokens(session) == count
    missing = _exchange(https_client(app), got["code"], None)
    assert missing.get_json()["error"] == "invalid_request" and _tokens(session) == count


def test_reused_code_is_refused_and_revokes_what_the_first_exchange_issued(app, session, clients, customer_client):
    verifier, challenge = pkce_pair()
    got = _code(customer_client, _authorize_url(challenge=challenge))
    first = _exchange(https_client(app), got["code"], verifier).get_json()
    count = _tokens(session)
    second = _exchange(https_client(app), got["code"], verifier)
    assert second.status_code == 400 and second.get_json()["error"] == "invalid_grant" and _tokens(session) == count
    api = https_client(app).get("/api/v1/credits/balance", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert api.status_code == 401


def test_redirect_uri_must_match_exactly_and_is_never_redirected_to(app, clients, customer_client):
    _, challenge = pkce_pair()
    for uri in ("http://localhost:3000/callback/", "http://localhost:3000/callback?x=1", "https://evil.example/cb"):
        page = customer_client.get(_authorize_url(challenge=challenge, redirect_uri=uri))
        assert page.status_code == 400 and "invalid_request" in page.get_data(as_text=True)
    unknown = customer_client.get(_authorize_url(client_id="no-such-client", challenge=challenge))
    assert unknown.status_code == 400 and "invalid_client" in unknown.get_data(as_text=True)


def test_token_exchange_with_another_redirect_uri_is_invalid_grant(app, session, clients, customer_client):
    verifier, challenge = pkce_pair()
    got = _code(customer_client, _authorize_url(challenge=challenge))
    count = _tokens(session)
    response = _exchange(https_client(app), got["code"], verifier, redirect_uri="http://localhost:3000/other")
    assert response.get_json()["error"] == "invalid_grant" and _tokens(session) == count


def test_missing_state_and_missing_pkce_go_back_to_the_client_as_invalid_request(app, clients, customer_client):
    _, challenge = pkce_pair()
    no_state = customer_client.get(_authorize_url(challenge=challenge, state=None))
    assert no_state.status_code == 302 and "error=invalid_request" in no_state.headers["Location"]
    no_pkce = customer_client.get(_authorize_url(challenge=None, state="s1"))
    assert no_pkce.status_code == 302 and "error=invalid_request" in no_pkce.headers["Location"]
    assert "state=s1" in no_pkce.headers["Location"]
    plain = customer_client.get(_authorize_url(challenge=challenge, code_challenge_method="plain"))
    assert "error=invalid_request" in plain.headers["Location"]


def test_denied_consent_answers_access_denied(app, clients, customer_client):
    _, challenge = pkce_pair()
    response = customer_client.post(_authorize_url(challenge=challenge), data={"decision": "deny"})
    assert response.status_code == 302 and "error=access_denied" in response.headers["Location"]
    assert "state=st-123" in response.headers["Location"]


def test_signed_out_visitor_is_sent_to_sign_in_and_back(app, clients):
    _, challenge = pkce_pair()
    url = _authorize_url(challenge=challenge)
    response = https_client(app).get(url)
    assert response.status_code == 302 and response.headers["Location"].startswith("/account/signin?next=")


def test_confidential_client_authenticates_with_its_secret(app, session, clients, customer_client):
    verifier, challenge = pkce_pair()
    got = _code(customer_client, _authorize_url(client_id=POC, redirect_uri=POC_URI, challenge=challenge))
    no_secret = _exchange(https_client(app), got["code"], verifier, client_id=POC, redirect_uri=POC_URI)
    assert no_secret.status_code == 401 and no_secret.get_json()["error"] == "invalid_client"
    ok = _exchange(https_client(app), got["code"], verifier, client_id=POC, redirect_uri=POC_URI,
                   client_secret=POC_SECRET)
    assert ok.status_code == 200 and ok.get_json()["access_token"].startswith("rph_oat_")


def test_metadata_names_every_endpoint(app):
    meta = https_client(app).get("/.well-known/oauth-authorization-server").get_json()
    assert meta["authorization_endpoint"].endswith("/oauth/authorize")
    assert meta["token_endpoint"].endswith("/oauth/token") and meta["revocation_endpoint"].endswith("/oauth/revoke")
    assert meta["code_challenge_methods_supported"] == ["S256"] and "refresh_token" in meta["grant_types_supported"]


def test_the_flow_logs_no_password_code_or_token(app, clients, customer, caplog):
    import logging

    from tests.accounts.conftest import PASSWORD

    caplog.set_level(logging.DEBUG)
    browser = https_client(app)
    browser.post("/account/signin", data={"email": customer.email, "password": PASSWORD})
    verifier, challenge = pkce_pair()
    got = _code(browser, _authorize_url(challenge=challenge))
    issued = _exchange(https_client(app), got["code"], verifier).get_json()
    https_client(app).post("/oauth/token", data={"grant_type": "refresh_token", "client_id": DESKTOP,
                                                 "refresh_token": issued["refresh_token"]})
    logged = "\n".join(f"{r.getMessage()} {r.args} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records
    secrets = [PASSWORD, got["code"], verifier, issued["access_token"], issued["refresh_token"]]
    assert [s for s in secrets if s in logged] == []


def test_a_password_reset_ends_the_apps_tokens_too(app, session, tokens, customer):
    from app.accounts import service

    service.request_reset(session, customer.email)
    token = _reset_token(session, customer)
    service.reset_password(session, token, "Fresh-Pass-2027x")
    session.commit()
    api = https_client(app).get("/api/v1/credits/balance", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "access_token_revoked"


def _reset_token(session, user) -> str:
    from app.notifications.models import OutboxMessage

    body = session.scalar(select(OutboxMessage.body).where(OutboxMessage.user_id == user.id,
                                                           OutboxMessage.kind == "account_reset"))
    return body.split("/account/reset/", 1)[1].split()[0]
