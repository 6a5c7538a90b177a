"""Seed 004's logging audit, automated: run the main flows with every log captured (DEBUG,
all loggers) and fail if any seeded secret appears in what was logged."""
from __future__ import annotations

import logging

import pyotp
import pytest

from app.seed import ADMIN_TOTP_SECRET, PERSONAS
from app.sandbox.seed import SEED_SANDBOX_KEY

CARD = "4242424242424242"


@pytest.fixture
def seeded(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    return result.output


def test_main_flows_log_no_secret(app, client, seeded, caplog):
    caplog.set_level(logging.DEBUG)
    passwords = [p[4] for p in PERSONAS if p[4]]
    # Staff sign-in: a wrong password, then the right one and a TOTP code.
    client.post("/auth/login", data={"email": "admin.test@rephlo.ai", "password": "Wrong-" + passwords[2]})
    client.post("/auth/login", data={"email": "admin.test@rephlo.ai", "password": "AdminPassword123!"})
    totp = pyotp.TOTP(ADMIN_TOTP_SECRET).now()
    client.post("/auth/verify", data={"code": totp})
    # API with the seeded sandbox key: reads, a bad request and a test user with a password.
    headers = {"Authorization": f"Bearer {SEED_SANDBOX_KEY}"}
    api = app.test_client()
    api.get("/api/v1/credits/balance", headers=headers)
    api.post("/api/v1/credits/calculate-cost", headers=headers, json={"model": "gpt-4-turbo", "input_tokens": -1})
    api.get("/api/v1/health", headers={"Authorization": "Bearer rph_test_not_a_real_key_0000000000"})
    # OAuth client credentials (seed 001 secrets).
    api.post("/api/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "desktop-app-test",
                                          "client_secret": "test-secret-desktop-app-12345"})
    api.post("/api/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "web-app-test",
                                          "client_secret": "wrong-secret"})
    # A forged Stripe webhook with a card number in its body.
    api.post("/webhooks/stripe", data=f'{{"card": "{CARD}"}}', headers={"Stripe-Signature": "t=1,v1=bad"})
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records) + seeded_logs(caplog)
    secrets = passwords + [ADMIN_TOTP_SECRET, totp, SEED_SANDBOX_KEY, "test-secret-desktop-app-12345",
                           "test-secret-poc-client-67890", "test-secret-web-app-11111", CARD,
                           app.config["SECRET_KEY"]]
    if app.config.get("STRIPE_WEBHOOK_SECRET"):
        secrets.append(app.config["STRIPE_WEBHOOK_SECRET"])
    assert caplog.records, "nothing was logged: the audit would prove nothing"
    leaked = [s for s in secrets if s and s in logged]
    assert leaked == []


def seeded_logs(caplog) -> str:
    return "\n".join(str(r.args) for r in caplog.records if r.args)
