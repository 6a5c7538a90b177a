"""A tier is sold only with a margin effective now: otherwise every API call of its customers
answers 422 margin_not_configured (issue 18: an upgrade to Pro Max broke a customer)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.billing import changes, tiers
from app.billing.models import ProrationEvent, Subscription
from app.billing.subscriptions import new_subscription
from app.core import clock
from app.core.errors import DomainError
from app.credits import margins
from tests.support.margins import SINCE


@pytest.fixture
def catalogue(session):
    """The default tiers with a margin for pro only (what a fresh catalogue looks like for Pro Max)."""
    made = tiers.ensure_default_tiers(session)
    margins.set_margin(session, None, "pro", "fixed_percentage", "40", "seed", effective_date=SINCE, at=SINCE)
    session.commit()
    return made


def test_no_customer_is_moved_to_a_tier_without_a_margin(session, make_user, catalogue):
    sub = new_subscription(session, make_user(), catalogue["pro"])
    session.commit()
    with pytest.raises(DomainError) as err:
        changes.preview_change(session, sub, "pro_max")
    assert err.value.code == "margin_not_configured" and err.value.field == "to_tier"
    assert "Pro Max tier has no margin configuration effective now" in err.value.message
    with pytest.raises(DomainError):
        changes.change_tier(session, None, sub, "pro_max", reason="upgrade")
    session.rollback()
    assert session.get(Subscription, sub.id).tier.name == "pro" and session.query(ProrationEvent).count() == 0
    with pytest.raises(DomainError) as err:
        changes.create(session, None, make_user(), tier_name="pro_max", reason="new customer")
    assert err.value.code == "margin_not_configured" and err.value.field == "tier"


def test_a_margin_starting_later_is_not_enough_one_effective_now_is(session, make_user, catalogue):
    sub = new_subscription(session, make_user(), catalogue["pro"])
    later = clock.now() + timedelta(days=3)
    margins.set_margin(session, None, "pro_max", "fixed_percentage", "30", "next week", effective_date=later, at=later)
    with pytest.raises(DomainError):
        changes.preview_change(session, sub, "pro_max")
    margins.set_margin(session, None, "pro_max", "fixed_percentage", "30", "now", effective_date=SINCE, at=SINCE)
    assert changes.preview_change(session, sub, "pro_max").to_tier == "pro_max"
    assert changes.preview_change(session, sub, "perpetual").to_tier == "perpetual"  # BYOK: never priced


def test_a_tier_is_not_made_sellable_without_a_margin(login_as, sudo, session, catalogue):
    tier = catalogue["pro_max"]
    tier.is_active = False
    session.commit()
    client = sudo(login_as("admin"))
    form = {"display_name": tier.display_name, "monthly_price": str(tier.monthly_price), "annual_price": "",
            "monthly_credits": str(tier.monthly_credits), "max_rollover": str(tier.max_rollover),
            "features": json.dumps(tier.features), "is_active": "y", "reason": "launch"}
    refused = client.post(f"/admin/billing/tiers/{tier.id}", data=form)
    assert refused.status_code == 422 and "Pro Max tier has no margin configuration" in refused.get_data(as_text=True)
    session.expire_all()
    assert tier.is_active is False
    unchanged = dict(form)
    unchanged.pop("is_active")  # editing an unsold tier stays possible
    assert client.post(f"/admin/billing/tiers/{tier.id}", data=unchanged).status_code == 302
    margins.set_margin(session, None, "pro_max", "fixed_percentage", "30", "launch", effective_date=SINCE, at=SINCE)
    session.commit()
    assert client.post(f"/admin/billing/tiers/{tier.id}", data=form).status_code == 302
    session.expire_all()
    assert tier.is_active is True
