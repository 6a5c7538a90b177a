"""Tiers and entitlements (seed 004's can_access_feature and auto-provisioning), staff
subscription creation, reactivation, and credit packs sold from the subscription page."""
from decimal import Decimal

import pytest

from app.billing import changes, packs, subscriptions, tiers
from app.billing.models import CreditPackPurchase, Invoice, SubscriptionTier
from app.core.errors import DomainError
from app.credits import balances


def test_seed_tiers(session):
    seeded = tiers.ensure_default_tiers(session)
    assert [(t.name, str(t.monthly_price), t.monthly_credits, t.max_rollover) for t in
            sorted(seeded.values(), key=lambda t: t.rank)] == [
        ("free", "0.00", 100, 0), ("perpetual", "0.00", 0, 0), ("pro", "99.99", 10000, 2000),
        ("pro_max", "199.99", 25000, 5000), ("enterprise_pro", "299.99", 50000, 10000),
        ("enterprise_max", "499.99", 100000, 20000)]
    assert seeded["free"].features["device_activations"] == 1
    assert seeded["enterprise_pro"].features["device_activations"] == -1
    assert seeded["pro"].price_for("annual") == Decimal("1199.88")


def test_new_users_start_free_with_a_balance(session, make_user, make_sub):
    user = make_user()
    sub = subscriptions.provision_free(session, user)
    assert subscriptions.provision_free(session, user) is sub  # idempotent
    assert sub.tier.name == "free" and sub.status == "active"
    assert balances.get_balance(session, user.id).subscription_credits == 100


def test_can_access_feature_follows_the_tier_and_status(session, make_sub):
    sub = make_sub("free")
    user = sub.user
    assert not tiers.can_access_feature(session, user, "advanced_analytics")
    assert tiers.can_access_feature(session, user, "device_activations")
    assert not tiers.can_access_feature(session, user, "marketplace")  # unknown feature
    sub.tier = tiers.get_tier(session, "pro")
    assert tiers.can_access_feature(session, user, "advanced_analytics")
    sub.status = "paused"  # a paused or lapsed subscription falls back to free
    assert not tiers.can_access_feature(session, user, "advanced_analytics")
    sub.status = "grace_period"
    assert tiers.can_access_feature(session, user, "advanced_analytics")


def test_unknown_tier_and_bad_features_are_refused(session, make_sub):
    with pytest.raises(DomainError) as err:
        tiers.get_tier(session, "platinum")
    assert err.value.code == "unknown_tier"
    for bad in ({"colour": "red"}, {"device_activations": "3"}, {"device_activations": -2}, {"byok": 1}, []):
        with pytest.raises(DomainError):
            tiers.parse_features(bad)


def test_tier_update_refuses_bad_input_and_changes_nothing(session, make_sub):
    pro = tiers.get_tier(session, "pro")
    for kwargs in ({"monthly_price": "-1"}, {"monthly_credits": "ten"}, {"reason": " "}, {"annual_price": "1.234"}):
        args = dict(display_name="Pro", monthly_price="99.99", annual_price="", monthly_credits="10000",
                    max_rollover="2000", features={}, is_active=True, reason="r")
        args.update(kwargs)
        with pytest.raises(DomainError):
            tiers.update_tier(session, None, pro, **args)
    session.expire_all()
    assert session.get(SubscriptionTier, pro.id).monthly_price == Decimal("99.99")


def test_staff_create_conflicts_and_reactivation(session, make_user, make_sub):
    user = make_user()
    sub = changes.create(session, None, user, tier_name="pro", reason="sales deal")
    invoice = session.query(Invoice).filter_by(subscription_id=sub.id).one()
    assert invoice.status == "open" and invoice.total == Decimal("99.99")  # no card: awaiting payment
    with pytest.raises(DomainError) as err:
        changes.create(session, None, user, tier_name="enterprise_pro", reason="again")
    assert err.value.code == "subscription_exists" and err.value.status == 409
    with pytest.raises(DomainError) as err:
        changes.create(session, None, make_user(), tier_name="pro", cycle="weekly", reason="x")
    assert err.value.code == "invalid_billing_cycle"
    changes.cancel(session, None, sub, at_period_end=False, reason="test")
    assert sub.status == "cancelled" and invoice.status == "void"  # unpaid: voided, nothing refunded
    changes.reactivate(session, None, sub, reason="came back")
    assert sub.status == "active" and sub.cancelled_at is None
    with pytest.raises(DomainError) as err:
        changes.reactivate(session, None, sub, reason="twice")
    assert err.value.code == "not_reactivatable"


def test_staff_sell_pack_grants_bonus_credits_only_when_paid(login_as, session, make_sub):
    packs.ensure_default_packs(session)
    pack = packs.all_packs(session)[1]
    paying = make_sub("pro", card="4242424242424242")
    client = login_as("ops")
    session.commit()
    response = client.post(f"/admin/billing/subscriptions/{paying.id}/sell-pack", data={"pack_id": pack.id},
                           follow_redirects=True)
    assert f"{pack.credits:,} bonus credits added" in response.get_data(as_text=True)
    assert balances.get_balance(session, paying.user_id).bonus_credits == pack.credits
    no_card = make_sub("pro")
    session.commit()
    refused = client.post(f"/admin/billing/subscriptions/{no_card.id}/sell-pack", data={"pack_id": pack.id})
    assert refused.status_code == 409 and "no card on file" in refused.get_data(as_text=True)
    assert session.query(CreditPackPurchase).filter_by(user_id=no_card.user_id).count() == 0
