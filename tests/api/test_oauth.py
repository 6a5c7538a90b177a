"""Client-credentials grant: the seeded test clients, token use in test mode, expiry, rotation."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core import clock
from app.extensions import db
from app.rbac.models import Role, RoleAssignment
from app.core.errors import DomainError
from app.api import clients as oauth
from app.sandbox import service
from app.api.models import OAuthClient, OAuthToken, secret_hash
from app.sandbox.seed import OAUTH_CLIENTS, seed_oauth_clients

TOKEN = "/api/v1/oauth/token"
LIST = "/api/v1/admin/test/users"


@pytest.fixture
def clients(session):
    seeded = seed_oauth_clients(session, log=lambda *_: None)
    session.flush()
    return {c.client_id: c for c in seeded}


def _grant(client_id="web-app-test", secret="test-secret-web-app-11111"):
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def test_seed_loads_the_three_clients_with_hashed_secrets(clients, session):
    assert sorted(clients) == sorted(c[0] for c in OAUTH_CLIENTS)
    for client_id, secret, redirect, name in OAUTH_CLIENTS:
        row = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        assert row.secret_hash == secret_hash(secret) and secret not in str(row.__dict__)
        assert row.redirect_uris == [redirect] and row.name == name and row.is_test
        assert row.service_user.is_test and not row.service_user.is_staff
    listed = session.scalars(service.test_users_stmt()).all()
    assert not any(c.service_user in listed for c in clients.values())  # not customer test accounts
    with pytest.raises(DomainError) as refused:
        service.delete_test_users(session, None, [clients["web-app-test"].user_id])
    assert refused.value.code == "service_account"
    seed_oauth_clients(session, log=lambda *_: None)  # idempotent
    assert len(session.scalars(select(OAuthClient)).all()) == 3


@pytest.mark.parametrize("style", ["form", "json", "basic"])
def test_token_by_form_json_or_basic(client, clients, session, style):
    if style == "form":
        response = client.post(TOKEN, data=_grant())
    elif style == "json":
        response = client.post(TOKEN, json=_grant())
    else:
        basic = base64.b64encode(b"web-app-test:test-secret-web-app-11111").decode()
        response = client.post(TOKEN, data={"grant_type": "client_credentials"},
                               headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("rph_oat_")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Test-Mode"] == "true"
    token = session.scalar(select(OAuthToken).where(OAuthToken.token_hash == secret_hash(body["access_token"])))
    assert token.is_test and token.expires_at == token.created_at + timedelta(hours=1)


@pytest.mark.parametrize("grant, status, code", [
    (_grant(secret="wrong"), 401, "invalid_client"),
    (_grant(client_id="nobody"), 401, "invalid_client"),
    ({**_grant(), "grant_type": "password"}, 400, "unsupported_grant_type"),
    ({"client_id": "web-app-test"}, 422, "parameter_missing"),
])
def test_bad_grants_are_refused(client, clients, grant, status, code):
    response = client.post(TOKEN, data=grant)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_token_calls_the_api_as_the_service_account_in_test_mode(client, clients, session, frozen_clock):
    service_user = clients["desktop-app-test"].service_user
    role = session.scalar(select(Role).where(Role.name == "analyst"))
    session.add(RoleAssignment(user_id=service_user.id, role_id=role.id, reason="QA reads test accounts"))
    session.flush()
    token = client.post(TOKEN, data=_grant("desktop-app-test", "test-secret-desktop-app-12345")).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    response = client.get(LIST, headers=headers)
    assert response.status_code == 200 and response.headers["X-Test-Mode"] == "true"
    # the analyst role lacks users.edit_profile: the permission check applies to the service account
    assert client.post(LIST, json={}, headers=headers).status_code == 403
    frozen_clock.advance(timedelta(hours=1))
    expired = client.get(LIST, headers=headers)
    assert expired.status_code == 401 and expired.get_json()["error"]["code"] == "access_token_expired"


def test_rotation_ends_the_old_secret_and_tokens(client, clients, session, make_user):
    admin = make_user(roles=("admin",))
    web = clients["web-app-test"]
    old_token = client.post(TOKEN, data=_grant()).get_json()["access_token"]
    new_secret = oauth.rotate_secret(session, admin, web)
    session.commit()  # as the screen does (requests in tests share the test's session)
    assert client.post(TOKEN, data=_grant()).status_code == 401
    assert client.get(LIST, headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    assert client.post(TOKEN, data=_grant(secret=new_secret)).status_code == 200


def test_revoked_client_gets_no_token(client, clients, session, make_user):
    oauth.revoke_client(session, make_user(roles=("admin",)), clients["poc-client-test"], "Retired")
    session.commit()
    response = client.post(TOKEN, data=_grant("poc-client-test", "test-secret-poc-client-67890"))
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_client"


def test_production_client_needs_sudo_and_gets_production_tokens(client, session, make_user):
    admin = make_user(roles=("admin",))
    with pytest.raises(Exception) as refused:
        oauth.create_client(session, admin, client_id="billing-portal", name="Billing portal",
                            redirect_uris="https://portal.example.com/cb", is_test=False)
    assert refused.value.code == "sudo_required"
    live, secret = oauth.create_client(session, admin, client_id="billing-portal", name="Billing portal",
                                       redirect_uris="https://portal.example.com/cb", is_test=False, sudo=True)
    db.session.flush()
    assert not live.is_test and not live.service_user.is_test
    response = client.post(TOKEN, data=_grant("billing-portal", secret))
    assert response.status_code == 200 and "X-Test-Mode" not in response.headers
    stored = session.scalar(select(OAuthToken).where(OAuthToken.client_pk == live.id))
    assert stored.is_test is False and stored.expires_at > clock.now()


@pytest.mark.parametrize("uris", ["http://portal.example.com/cb", "ftp://x.example.com", "https://a.example.com/#x"])
def test_redirect_uris_must_be_https_except_localhost(session, make_user, uris):
    with pytest.raises(Exception) as refused:
        oauth.create_client(session, make_user(roles=("admin",)), client_id="bad-uris", name="x",
                            redirect_uris=uris, is_test=True)
    assert refused.value.field == "redirect_uris"


def test_the_token_endpoints_own_rate_limit_applies_without_flask_limiters_request_hook(app, client, clients):
    """Flask-Limiter's before_request hook returns at once for the API (skip_browser_hooks):
    a route's own limit is checked by the route and still refuses."""
    skipped = [getattr(f.__wrapped__, "__name__", "") for f in app.before_request_funcs[None]
               if getattr(f, "skips_api", False)]
    assert "_check_request_limit" in skipped
    old = app.config["OAUTH_TOKEN_RATE_LIMIT"]
    app.config["OAUTH_TOKEN_RATE_LIMIT"] = "2 per minute"
    try:
        answers = [client.post(TOKEN, data=_grant()) for _ in range(3)]
    finally:
        app.config["OAUTH_TOKEN_RATE_LIMIT"] = old
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"]
