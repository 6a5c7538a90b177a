"""Versioned prices and margins: the row effective at the request's time is the one used."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.core import clock
from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.credits import balances, margins, metering, pricing
from app.credits.models import MarginAudit, MarginConfig, ModelPrice, Provider, TokenUsage
from tests.credits.conftest import utc


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_price_effective_at_a_timestamp_is_the_one_used(priced, frozen_clock, make_user):
    staff = make_user(roles=("admin",))
    later = clock.now() + timedelta(days=2)
    pricing_ = priced
    p = pricing
    p.add_price(pricing_, staff, "gpt-4-turbo", "20", "60", "Vendor doubled prices", effective_date=later)
    before = metering.estimate(pricing_, None, "gpt-4-turbo", 500, 300, tier="free", month_tokens=0)
    after = metering.estimate(pricing_, None, "gpt-4-turbo", 500, 300, tier="free", month_tokens=0,
                              at=later + timedelta(seconds=1))
    assert before.vendor_cost == Decimal("0.014") and after.vendor_cost == Decimal("0.028")
    assert before.price_id != after.price_id
    history = p.price_history(pricing_, "gpt-4-turbo")
    assert [h.input_price_per_million for h in history] == [Decimal("20.000000"), Decimal("10.000000")]


def test_a_price_change_between_two_requests_charges_each_at_its_own_price(priced, frozen_clock, make_user, funded):
    session = priced
    staff = make_user(roles=("admin",))
    user = funded(subscription=10_000, tier="free")
    first = metering.calculate_and_deduct(session, user.id, "gpt-4-turbo", 500, 300, "req-1")
    clock.advance(timedelta(minutes=1))
    pricing.add_price(session, staff, "gpt-4-turbo", "5", "15", "Price cut")
    clock.advance(timedelta(minutes=1))
    second = metering.calculate_and_deduct(session, user.id, "gpt-4-turbo", 500, 300, "req-2")
    assert first["credits_deducted"] == 53   # $0.014 at the free tier's 50%: 52.5 -> 53
    assert second["credits_deducted"] == 26  # $0.007 at 50%: 26.25 -> 26
    rows = session.scalars(select(TokenUsage).where(TokenUsage.user_id == user.id).order_by(TokenUsage.id)).all()
    assert rows[0].model_price_id != rows[1].model_price_id
    assert [r.vendor_cost_usd for r in rows] == [Decimal("0.014"), Decimal("0.007")]
    assert balances.get_balance(session, user.id).total == 10_000 - 53 - 26


def test_missing_price_is_an_error_never_a_free_request(priced, frozen_clock, funded, make_user):
    session = priced
    user = funded(subscription=100)
    with pytest.raises(DomainError) as err:
        metering.calculate_and_deduct(session, user.id, "gpt-7", 10, 10, "req-x")
    assert (err.value.code, err.value.field) == ("price_not_found", "model")
    pricing.add_price(session, make_user(roles=("admin",)), "mistral-large", "2", "6", "New model",
                      effective_date=clock.now() + timedelta(days=1),
                      provider_id=session.scalar(select(Provider.id).where(Provider.vendor_name == "mistral")))
    with pytest.raises(DomainError) as err:
        metering.calculate_and_deduct(session, user.id, "mistral-large", 10, 10, "req-y")
    assert err.value.code == "price_not_found"
    assert count(session, TokenUsage) == 0
    assert balances.get_balance(session, user.id).total == 100


def test_switching_a_provider_off_stops_its_models(priced, frozen_clock, funded, make_user):
    session = priced
    staff = make_user(roles=("admin",))
    meta = session.scalar(select(Provider).where(Provider.vendor_name == "meta"))
    pricing.update_provider(session, staff, meta.id, "Meta AI", meta.api_endpoint, False, "Outage")
    with pytest.raises(DomainError) as err:
        metering.estimate(session, None, "llama-2-70b", 1, 1, tier="pro", month_tokens=0)
    assert err.value.code == "provider_inactive"
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "credits.provider_updated")).one()
    assert entry.before["is_active"] is True and entry.after["is_active"] is False and entry.reason == "Outage"


@pytest.mark.parametrize("field, kwargs, code", [
    ("input_price", {"input_price": "-1"}, "invalid_price"),
    ("output_price", {"output_price": "1.0000001"}, "invalid_price"),
    ("input_price", {"input_price": "abc"}, "invalid_amount"),
    ("reason", {"reason": ""}, "reason_required"),
    ("effective_date", {"effective_date": utc(2020, 1, 1)}, "effective_in_past"),
    ("model_name", {"model_name": ""}, "invalid_model"),
])
def test_bad_price_input_names_the_field_and_writes_nothing(priced, frozen_clock, make_user, field, kwargs, code):
    session = priced
    before = count(session, ModelPrice)
    args = {"model_name": "gpt-4-turbo", "input_price": "1", "output_price": "2", "reason": "ok reason"} | kwargs
    with pytest.raises(DomainError) as err:
        pricing.add_price(session, make_user(roles=("admin",)), **args)
    assert (err.value.code, err.value.field) == (code, field)
    assert count(session, ModelPrice) == before


def test_a_new_model_needs_its_provider(priced, frozen_clock, make_user):
    with pytest.raises(DomainError) as err:
        pricing.add_price(priced, make_user(roles=("admin",)), "brand-new", "1", "2", "launch")
    assert err.value.code == "provider_required"


def test_margin_change_adds_a_version_and_a_margin_audit_row(priced, frozen_clock, make_user):
    session = priced
    admin = make_user(roles=("admin",))
    config = margins.set_margin(session, admin, "free", "fixed_percentage", "45.5", "Competitive pressure")
    assert config.margin_percentage == Decimal("45.50")
    row = session.scalars(select(MarginAudit).where(MarginAudit.config_id == config.id)).one()
    assert (row.old_margin, row.new_margin, row.reason, row.changed_by_id) == (
        Decimal("50.00"), Decimal("45.50"), "Competitive pressure", admin.id)
    assert metering.estimate(session, None, "gpt-4-turbo", 500, 300, tier="free", month_tokens=0).margin == \
        Decimal("45.50")
    assert len(margins.history(session, "free")) == 2
    assert session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == "credits.margin_changed", AuditEntry.actor_id == admin.id)) == 1


def test_dynamic_margin_uses_the_vendor_adjustment(priced, frozen_clock, make_user):
    session = priced
    margins.set_margin(session, make_user(roles=("admin",)), "enterprise_pro", "dynamic", "25", "Q4 deal",
                       adjustments=[("openai", "5"), ("meta", "-10")])
    gpt = metering.estimate(session, None, "gpt-4-turbo", 500, 300, tier="enterprise_pro", month_tokens=0)
    llama = metering.estimate(session, None, "llama-2-70b", 500, 300, tier="enterprise_pro", month_tokens=0)
    claude = metering.estimate(session, None, "claude-3.5-sonnet", 1500, 800, tier="enterprise_pro", month_tokens=0)
    assert (gpt.margin, llama.margin, claude.margin) == (Decimal("30.00"), Decimal("15.00"), Decimal("25.00"))


@pytest.mark.parametrize("tier, strategy, margin, brackets, adjustments, code", [
    ("perpetual", "fixed_percentage", "5", (), (), "perpetual_margin"),
    ("gold", "fixed_percentage", "5", (), (), "invalid_tier"),
    ("pro", "magic", "5", (), (), "invalid_strategy"),
    ("pro", "tiered", None, [("1000", "30")], (), "invalid_brackets"),
    ("pro", "tiered", None, [("0", "30"), ("10M", "abc")], (), "invalid_amount"),
    ("pro", "fixed_percentage", "1000", (), (), "invalid_percentage"),
    ("pro", "fixed_percentage", "10.555", (), (), "invalid_percentage"),
    ("enterprise_pro", "dynamic", "25", (), [("acme", "5")], "unknown_vendor"),
    ("enterprise_pro", "dynamic", "25", (), [("openai", "-30")], "invalid_percentage"),
])
def test_bad_margins_are_refused(priced, frozen_clock, make_user, tier, strategy, margin, brackets, adjustments,
                                 code):
    before = count(priced, MarginConfig)
    with pytest.raises(DomainError) as err:
        margins.set_margin(priced, make_user(roles=("admin",)), tier, strategy, margin, "because",
                           brackets=brackets, adjustments=adjustments)
    assert err.value.code == code
    assert count(priced, MarginConfig) == before


def test_tier_without_a_margin_is_an_error(priced, frozen_clock):
    with pytest.raises(DomainError) as err:
        metering.estimate(priced, None, "gpt-4-turbo", 1, 1, tier="pro_max", month_tokens=0)
    assert err.value.code == "margin_not_configured"


def test_the_snapshot_is_reloaded_when_the_token_changes(priced, frozen_clock, make_user):
    session = priced
    first = pricing.snapshot(session)
    assert pricing.snapshot(session) is first
    pricing.add_price(session, make_user(roles=("admin",)), "llama-2-70b", "0.5", "0.5", "cheaper")
    assert pricing.snapshot(session) is not first
