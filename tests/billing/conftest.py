"""Billing fixtures: a real Stripe emulator (localstripe, GPL: started as a subprocess on a
free loopback port, never imported), the seed tiers, and subscription factories."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.support.stripe_emulator import free_port, localstripe

WEBHOOK_SECRET = "whsec_test_billing_secret"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def stripe_emulator():
    with localstripe() as base:
        yield base


@pytest.fixture(autouse=True)
def _stripe_config(app, stripe_emulator):
    saved = {k: app.config.get(k) for k in ("STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY",
                                            "STRIPE_TEST_API_KEY", "STRIPE_MAX_RETRIES")}
    app.config.update(STRIPE_API_BASE=stripe_emulator, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                      STRIPE_API_KEY="sk_test_billing", STRIPE_TEST_API_KEY="", STRIPE_MAX_RETRIES=0)
    yield
    app.config.update(saved)


@pytest.fixture
def stripe_down(app):
    """The emulator stopped: nothing listens on the configured port."""
    app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def tiers(session):
    from app.billing import tiers as tier_service
    from tests.support.margins import price_every_tier

    price_every_tier(session)
    return tier_service.ensure_default_tiers(session)


@pytest.fixture
def make_sub(session, make_user, tiers):
    """A subscription on `tier` whose period starts at `start` (default 2025-11-01),
    optionally with a card on file (a test card number or pm id)."""
    from app.billing import allocation, changes, periods
    from app.billing.subscriptions import new_subscription

    def make(tier: str = "pro", *, start: str = "2025-11-01", user=None, card: str | None = None,
             cycle: str = "monthly", status: str = "active", allocate: bool = False):
        user = user or make_user()
        sub = new_subscription(session, user, tiers[tier], cycle, start=periods.start_of_day(utc(start).date()),
                               status=status)
        session.commit()
        if card:
            changes.attach_card(session, None, sub, card, reason="test card")
        if allocate:
            allocation.allocate_period(session, sub)
            session.commit()
        return sub

    return make
