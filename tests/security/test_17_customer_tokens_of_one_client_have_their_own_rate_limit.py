"""Every customer signed in to one OAuth client (the desktop app's authorization-code flow) had
one rate-limit window between them: the limit was keyed on the client alone, so one customer
(or anyone with an account) running the client past its limit got every other customer of that
client refused 429. A customer's token is limited per client and customer; a client-credentials
token (the client's service account) per client, as before."""
from __future__ import annotations

import secrets

import pytest

from app.accounts import tokens
from app.api import clients as oauth

BALANCE = "/api/v1/credits/balance"


@pytest.fixture
def live_client(session, make_user):
    admin = make_user(roles=("admin",))
    client, _ = oauth.create_client(session, admin, client_id="desktop-live", name="Desktop app",
                                    redirect_uris="https://app.example.com/cb", is_test=False, sudo=True)
    session.commit()
    return client


def _token_headers(session, client, user) -> dict:
    access = "rph_oat_" + secrets.token_urlsafe(24).replace("-", "a")
    tokens.save(session, client=client, user=user, scope="credits:read", access_token=access,
                refresh_token=None, expires_in=3600, family=tokens.new_family())
    session.commit()
    return {"Authorization": f"Bearer {access}"}


def test_one_customer_past_the_limit_does_not_refuse_another_of_the_same_client(app, client, session, make_user,
                                                                                live_client, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "2 per minute")
    first, second = make_user(), make_user()
    noisy, quiet = _token_headers(session, live_client, first), _token_headers(session, live_client, second)
    assert [client.get(BALANCE, headers=noisy).status_code for _ in range(3)][-1] == 429
    assert client.get(BALANCE, headers=quiet).status_code != 429
