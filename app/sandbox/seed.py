"""Seed 001's three test OAuth clients (secrets stored hashed) and a fixed sandbox key.

The sandbox key has a documented, fixed value so that tests, the README and the e2e journey
can call the API as pro.user@example.com. It is a test key of a test persona: everything it
writes is test data and it never reaches a live payment.
"""
from __future__ import annotations

from sqlalchemy import select

from app.api import keys as key_service
from app.api import clients as oauth
from app.api.models import ApiKey, OAuthClient, secret_hash
from app.users.models import User

SEED_SANDBOX_KEY = "rph_test_seed_pro_user_0000000000000000"
SEED_SANDBOX_KEY_OWNER = "pro.user@example.com"

# client_id, secret, redirect URI, name  (seed 001 "Seeded OAuth Clients")
OAUTH_CLIENTS = [
    ("desktop-app-test", "test-secret-desktop-app-12345", "http://localhost:3000/callback",
     "Rephlo Desktop App (Test)"),
    ("poc-client-test", "test-secret-poc-client-67890", "http://localhost:8080/oauth/callback", "POC Client (Test)"),
    ("web-app-test", "test-secret-web-app-11111", "http://localhost:5173/callback", "Rephlo Web App (Test)"),
]

PUBLIC_CLIENTS = {"desktop-app-test", "web-app-test"}


def seed_oauth_clients(session, log=print) -> list[OAuthClient]:
    """Created or reset to the seed's id, secret, redirect URI and name (idempotent)."""
    clients = []
    for client_id, secret, redirect, name in OAUTH_CLIENTS:
        client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        if client is None:
            client, _ = oauth.create_client(session, None, client_id=client_id, name=name,
                                            redirect_uris=[redirect], is_test=True, secret=secret)
        else:
            client.name, client.redirect_uris, client.is_test = name, [redirect], True
            client.secret_hash, client.secret_last4 = secret_hash(secret), secret[-4:]
            client.revoked_at, client.revoked_reason = None, None
        # The desktop and browser apps keep no secret (RFC 8252): public clients, PKCE required.
        client.is_public = client_id in PUBLIC_CLIENTS
        clients.append(client)
    log(f"  OAuth clients: {', '.join(c.client_id for c in clients)}")
    return clients


def seed_sandbox_key(session, log=print) -> ApiKey | None:
    owner = session.scalar(select(User).where(User.email == SEED_SANDBOX_KEY_OWNER))
    if owner is None:
        log(f"  no {SEED_SANDBOX_KEY_OWNER}: sandbox key skipped")
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == secret_hash(SEED_SANDBOX_KEY)))
    if key is None:
        key, _ = key_service.create_api_key(session, None, owner=owner, name="Seed sandbox key",
                                            key_type="sandbox", plain=SEED_SANDBOX_KEY)
    else:
        key.revoked_at, key.revoked_reason, key.expires_at = None, None, None
    log(f"  Sandbox API key for {SEED_SANDBOX_KEY_OWNER}: {SEED_SANDBOX_KEY}")
    return key


def seed_api_access(session, log=print) -> None:
    seed_oauth_clients(session, log)
    seed_sandbox_key(session, log)
    session.flush()
