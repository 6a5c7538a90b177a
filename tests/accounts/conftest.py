"""Customer-side fixtures: the seed tiers, the seeded OAuth clients, a signed-in customer, PKCE."""
from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from flask.testing import FlaskClient

PASSWORD = "Customer-Pass-2026"


@pytest.fixture
def tiers(session):
    from app.billing import tiers as tier_service
    from tests.support.margins import price_every_tier

    price_every_tier(session)  # a tier is sold only with a margin effective now (issue 18)
    return tier_service.ensure_default_tiers(session)


@pytest.fixture
def clients(session, tiers):
    from app.sandbox.seed import seed_oauth_clients

    seeded = seed_oauth_clients(session, log=lambda *_: None)
    session.commit()
    return {c.client_id: c for c in seeded}


@pytest.fixture
def customer(session, tiers):
    from app.accounts import service

    from tests.conftest import _cached_hash

    user = service.create_customer(session, email=f"c-{secrets.token_hex(4)}@example.com", name="Cara Customer")
    user.password_hash = _cached_hash(PASSWORD)  # argon2id once per run, not per test
    session.commit()
    return user


class _HttpsClient(FlaskClient):
    def open(self, *args, **kwargs):
        if args and isinstance(args[0], str):
            kwargs.setdefault("base_url", "https://admin.test")
        return super().open(*args, **kwargs)


def https_client(app):
    """Authlib refuses OAuth over plain http off loopback: the test host speaks https (as behind TLS)."""
    return _HttpsClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def customer_client(app, customer):
    """A browser signed in as `customer` on the customer pages."""
    client = https_client(app)
    response = client.post("/account/signin", data={"email": customer.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    client.user = customer
    return client


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge
