"""Pricing screens: view with analytics.view_revenue; change with credits.deduct and sudo;
inline edits answer their table's fragment; every change audited; the live calculator."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.credits import margins, pricing
from app.credits.models import MarginAudit, ModelPrice, Provider

HX = {"HX-Request": "true"}
PRICING = "/admin/credits/pricing/"


def test_analysts_see_prices_but_cannot_change_them(login_as, priced, session):
    analyst = login_as("analyst")
    page = analyst.get(PRICING).data
    assert b"gpt-4-turbo" in page and b"New price" not in page and b"Add a provider" not in page
    refused = analyst.post(f"{PRICING}models/gpt-4-turbo/prices", data={"input_price": "1", "output_price": "1",
                                                                         "reason": "cheaper"})
    assert refused.status_code == 403 and b"credits.deduct" in refused.data
    assert login_as("ops").post(f"{PRICING}margins/free", data={}).status_code == 403


def test_a_price_change_needs_sudo_and_is_audited(login_as, sudo, priced, session):
    admin = login_as("admin")
    data = {"input_price": "12.5", "output_price": "37.5", "reason": "Vendor raised prices"}
    asked = admin.post(f"{PRICING}models/gpt-4-turbo/prices", data=data)
    assert asked.status_code == 302 and "/auth/sudo" in asked.headers["Location"]
    sudo(admin)
    form = admin.get(f"{PRICING}?part=prices&edit_model=gpt-4-turbo", headers=HX)
    assert b"<html" not in form.data and b"Add price" in form.data
    saved = admin.post(f"{PRICING}models/gpt-4-turbo/prices", data=data, headers=HX)
    assert saved.status_code == 200 and b"New price for gpt-4-turbo" in saved.data and b"<html" not in saved.data
    latest = pricing.price_history(session, "gpt-4-turbo")[0]
    assert (latest.input_price_per_million, latest.output_price_per_million) == (Decimal("12.5"), Decimal("37.5"))
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "credits.price_added")).one()
    assert entry.actor_id == admin.user.id and entry.before["input_price_per_million"] == "10.000000"


def test_inline_form_errors_come_back_in_the_fragment(login_as, sudo, priced, session):
    admin = sudo(login_as("admin"))
    before = session.scalar(select(ModelPrice.id).order_by(ModelPrice.id.desc()))
    bad = admin.post(f"{PRICING}models/gpt-4-turbo/prices", headers=HX,
                     data={"input_price": "-3", "output_price": "1", "reason": "typo"})
    assert bad.status_code == 422 and b"from 0 to 999999.999999" in bad.data and b"<html" not in bad.data
    assert session.scalar(select(ModelPrice.id).order_by(ModelPrice.id.desc())) == before
    openai = session.scalar(select(Provider).where(Provider.vendor_name == "openai"))
    no_reason = admin.post(f"{PRICING}providers/{openai.id}", headers=HX,
                           data={"display_name": "OpenAI Inc", "api_endpoint": openai.api_endpoint, "is_active": "y"})
    assert no_reason.status_code == 422 and b"Give a reason" in no_reason.data
    saved = admin.post(f"{PRICING}providers/{openai.id}", headers=HX,
                       data={"display_name": "OpenAI Inc", "api_endpoint": openai.api_endpoint, "is_active": "y",
                             "reason": "Rename"})
    assert saved.status_code == 200 and b"Saved OpenAI Inc" in saved.data


def test_new_model_and_provider(login_as, sudo, priced, session):
    admin = sudo(login_as("admin"))
    added = admin.post(f"{PRICING}providers", data={"vendor_name": "xai", "display_name": "xAI",
                                                    "api_endpoint": "https://api.x.ai", "reason": "New vendor"})
    assert added.status_code == 302
    xai = session.scalar(select(Provider).where(Provider.vendor_name == "xai"))
    model = admin.post(f"{PRICING}models", data={"model_name": "grok-2", "provider_id": str(xai.id),
                                                 "input_price": "2", "output_price": "10", "reason": "Launch"})
    assert model.status_code == 302
    assert pricing.price_history(session, "grok-2")[0].provider_id == xai.id


def test_margin_change_writes_the_margin_audit_log(login_as, sudo, priced, session):
    admin = sudo(login_as("admin"))
    form = admin.get(f"{PRICING}margins?part=margins&edit_tier=pro", headers=HX)
    assert b"0: 40.00" in form.data and b"10000000: 30.00" in form.data
    bad = admin.post(f"{PRICING}margins/pro", headers=HX,
                     data={"strategy": "tiered", "brackets": "5M: 30", "reason": "oops"})
    assert bad.status_code == 422 and b"starting at 0 tokens" in bad.data
    saved = admin.post(f"{PRICING}margins/pro", headers=HX, data={
        "strategy": "tiered", "brackets": "0: 45\n10M: 35\n50M: 25", "reason": "Q1 pricing"})
    assert saved.status_code == 200 and b"New pro margin saved" in saved.data
    assert margins.current(session, "pro").margin_percentage == Decimal("45.00")
    row = session.scalars(select(MarginAudit).order_by(MarginAudit.id.desc())).first()
    assert (row.old_margin, row.new_margin, row.reason, row.changed_by_id) == (
        Decimal("40.00"), Decimal("45.00"), "Q1 pricing", admin.user.id)
    assert b"Q1 pricing" in admin.get(f"{PRICING}margins").data


def test_calculator_answers_live(login_as, priced):
    ops = login_as("ops")
    url = f"{PRICING}?part=calculator&tier=pro&model=gpt-4-turbo&input_tokens=500&output_tokens=300&month_tokens=0"
    result = ops.get(url, headers=HX).data.decode()
    assert "<html" not in result and "$0.014000" in result and "40.00%" in result and "$0.019600" in result
    assert 'id="calc-credits">49<' in result
    tiered = ops.get(url.replace("month_tokens=0", "month_tokens=10000000"), headers=HX).data.decode()
    assert "30.00%" in tiered
    bad = ops.get(url.replace("input_tokens=500", "input_tokens=-1"), headers=HX).data.decode()
    assert "Input tokens" in bad and 'role="alert"' in bad
    full = ops.get(url.replace("part=calculator&", "")).data.decode()
    assert "<html" in full and 'id="calc-credits">49<' in full  # works without JavaScript too
