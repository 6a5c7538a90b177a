"""Coupon and campaign screens: permissions, forms, bad input (422, nothing written), bulk codes, CSV."""
import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.coupons.coupons import ALPHABET
from app.coupons.models import Campaign, Coupon, ValidationRule

GOOD_COUPON = {"code": "spring20", "description": "Spring", "coupon_type": "percentage_discount",
               "discount_type": "percentage", "discount_value": "20", "max_uses": "100", "max_uses_per_user": "1",
               "min_purchase_amount": "0.00", "tier_eligibility": ["pro", "pro_max"], "billing_cycles": ["monthly"],
               "valid_from": "2025-11-01T00:00", "valid_until": "2025-12-01T00:00", "campaign_id": "",
               "is_active": "y"}
GOOD_CAMPAIGN = {"name": "Spring sale", "campaign_type": "seasonal", "starts_at": "2025-11-01T00:00",
                 "ends_at": "2025-12-01T00:00", "budget_limit": "5000.00", "target_tier": "pro", "is_active": "y"}


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("path", ["/admin/coupons", "/admin/campaigns", "/admin/fraud", "/admin/coupons/new",
                                  "/admin/campaigns/new"])
def test_screens_open_for_admins(login_as, path):
    response = login_as("admin").get(path)
    assert response.status_code == 200
    assert b"<h1>" in response.data


def test_permissions_are_checked(login_as, session, make_campaign):
    support = login_as("support")
    assert support.get("/admin/coupons").status_code == 200
    assert support.get("/admin/coupons/new").status_code == 403
    assert b"coupons.create" in support.get("/admin/coupons/new").data
    assert support.get("/admin/fraud").status_code == 403
    assert support.post("/admin/campaigns/new", data=GOOD_CAMPAIGN).status_code == 403
    assert login_as("auditor").get("/admin/coupons").status_code == 403
    nav = login_as("support").get("/admin").data
    assert b"Coupons" in nav and b"Fraud review" not in nav


def test_create_campaign_and_coupon_on_the_screens(login_as, session):
    admin = login_as("admin")
    response = admin.post("/admin/campaigns/new", data=GOOD_CAMPAIGN)
    assert response.status_code == 302
    campaign = session.scalar(select(Campaign).where(Campaign.name == "Spring sale"))
    assert campaign.budget_limit == Decimal("5000.00") and campaign.created_by_id == admin.user.id
    response = admin.post("/admin/coupons/new", data={**GOOD_COUPON, "campaign_id": str(campaign.id)})
    assert response.status_code == 302
    coupon = session.scalar(select(Coupon).where(Coupon.code == "SPRING20"))
    assert coupon.discount_value == Decimal("20.00") and coupon.tier_eligibility == ["pro", "pro_max"]
    assert coupon.campaign_id == campaign.id and coupon.max_uses_per_user == 1
    page = admin.get(f"/admin/campaigns/{campaign.id}")
    assert b"SPRING20" in page.data and b"Spend against budget" in page.data
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"campaigns.created", "coupons.created"} <= actions


@pytest.mark.parametrize("change, field, message", [
    ({"discount_value": "120"}, "discount_value", b"at most 100"),
    ({"discount_value": "-5"}, "discount_value", b"at most 100"),
    ({"discount_type": "fixed_amount", "coupon_type": "fixed_amount_discount", "discount_value": "12.345"},
     "discount_value", b"at most two decimals"),
    ({"discount_type": "fixed_amount", "coupon_type": "fixed_amount_discount", "discount_value": "12,50"},
     "discount_value", b"amount such as 99.99"),
    ({"discount_type": "fixed_amount", "coupon_type": "fixed_amount_discount", "discount_value": "$25"},
     "discount_value", b"amount such as 99.99"),
    ({"valid_until": "2025-10-01T00:00"}, "valid_until", b"must be after"),
    ({"code": "bad code!"}, "code", b"3 to 40 letters"),
    ({"max_uses": "1.5"}, "max_uses", b"whole number"),
    ({"min_purchase_amount": "-1"}, "min_purchase_amount", b"cannot be negative"),
    ({"discount_type": "credits", "coupon_type": "duration_bonus", "discount_value": "10.5"},
     "discount_value", b"whole number"),
])
def test_bad_coupon_input_is_refused_and_nothing_changes(login_as, session, change, field, message):
    before = count(session, Coupon)
    response = login_as("admin").post("/admin/coupons/new", data={**GOOD_COUPON, **change})
    assert response.status_code == 422
    assert message in response.data
    assert f'id="{field}-error"'.encode() in response.data
    assert count(session, Coupon) == before


def test_codes_are_unique_ignoring_case(login_as, session, make_coupon):
    make_coupon(code="SPRING20")
    session.commit()  # keep fixtures through the view's rollback (the test's outer transaction still ends it)
    response = login_as("admin").post("/admin/coupons/new", data={**GOOD_COUPON, "code": "Spring20"})
    assert response.status_code == 409 and b"is taken" in response.data
    assert count(session, Coupon) == 1


def test_campaign_bad_input(login_as, session, make_campaign):
    admin = login_as("admin")
    assert admin.post("/admin/campaigns/new", data={**GOOD_CAMPAIGN, "ends_at": "2025-10-01T00:00"}).status_code == 422
    assert admin.post("/admin/campaigns/new", data={**GOOD_CAMPAIGN, "budget_limit": "10.001"}).status_code == 422
    assert count(session, Campaign) == 0
    campaign = make_campaign(name="Spent", budget_limit="1000.00", spent="400.00")
    session.commit()
    response = admin.post(f"/admin/campaigns/{campaign.id}/edit",
                          data={**GOOD_CAMPAIGN, "name": "Spent", "budget_limit": "399.99"})
    assert response.status_code == 422 and b"cannot be below what the campaign has spent" in response.data
    session.expire_all()
    assert campaign.budget_limit == Decimal("1000.00")


def test_budget_changes_need_set_budget(login_as, session, make_campaign):
    campaign = make_campaign(name="Ops campaign", budget_limit="1000.00")
    session.commit()
    data = {**GOOD_CAMPAIGN, "name": "Ops campaign", "budget_limit": "2000.00"}
    ops = login_as("ops")  # campaigns.create but not campaigns.set_budget
    assert ops.post(f"/admin/campaigns/{campaign.id}/edit", data=data).status_code == 403
    assert ops.post(f"/admin/campaigns/{campaign.id}/edit",
                    data={**data, "budget_limit": "1000.00", "target_tier": ""}).status_code == 302
    assert login_as("admin").post(f"/admin/campaigns/{campaign.id}/edit", data=data).status_code == 302
    session.expire_all()
    assert campaign.budget_limit == Decimal("2000.00") and campaign.target_tier == "pro"


def test_edit_and_deactivate_a_coupon(login_as, session, make_coupon):
    coupon = make_coupon(code="EDITME")
    session.commit()
    admin = login_as("admin")
    form = admin.get(f"/admin/coupons/{coupon.id}/edit")
    assert form.status_code == 200 and b"EDITME" in form.data
    data = {**GOOD_COUPON, "discount_value": "35", "reason": "Bigger promo"}
    assert admin.post(f"/admin/coupons/{coupon.id}/edit", data=data).status_code == 302
    session.expire_all()
    assert coupon.discount_value == Decimal("35.00") and coupon.code == "EDITME"
    assert admin.post(f"/admin/coupons/{coupon.id}/active", data={"active": "0"}).status_code == 302
    session.expire_all()
    assert coupon.is_active is False
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "coupons.updated"))
    assert entry.before["discount_value"] == "20.00" and entry.after["discount_value"] == "35.00"
    assert entry.reason == "Bigger promo"


def test_rules_are_added_with_checked_parameters(login_as, session, make_coupon):
    coupon = make_coupon()
    session.commit()
    admin = login_as("admin")
    for bad in ('{"domains": []}', '{"domains": ["not a domain"]}', "{domains: 1}", '{"days": "90"}', "[1]"):
        rule_type = "exclude_refunded_users" if "days" in bad else "specific_email_domain"
        response = admin.post(f"/admin/coupons/{coupon.id}/rules", data={"rule_type": rule_type, "rule_value": bad})
        assert response.status_code == 422, bad
        assert b'id="rule_value-error"' in response.data
    assert count(session, ValidationRule) == 0
    ok = admin.post(f"/admin/coupons/{coupon.id}/rules",
                    data={"rule_type": "specific_email_domain", "rule_value": '{"domains": ["Company.com"]}'})
    assert ok.status_code == 302
    rule = session.scalar(select(ValidationRule))
    assert rule.rule_value == {"domains": ["company.com"]}
    assert admin.post(f"/admin/coupons/{coupon.id}/rules/{rule.id}/delete").status_code == 302
    assert count(session, ValidationRule) == 0


def test_preview_uses_the_validation_service(login_as, session, make_coupon, make_user, coupon_clock):
    make_user("someone@company.com")
    coupon = make_coupon(code="PREVIEW30", discount_value="30", min_purchase_amount="50.00")
    session.commit()
    admin = login_as("admin")
    ok = admin.post(f"/admin/coupons/{coupon.id}/preview",
                    data={"email": "someone@company.com", "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"})
    assert b"Valid." in ok.data and b"$30.00" in ok.data and b"$69.99" in ok.data
    low = admin.post(f"/admin/coupons/{coupon.id}/preview",
                     data={"email": "someone@company.com", "amount": "10.00", "tier": "pro", "billing_cycle": ""},
                     headers={"HX-Request": "true"})
    assert b"below_minimum" in low.data and b"<html" not in low.data
    unknown = admin.post(f"/admin/coupons/{coupon.id}/preview",
                         data={"email": "nobody@company.com", "amount": "10.00", "tier": "pro", "billing_cycle": ""})
    assert b"No account has this email address" in unknown.data


def test_bulk_generate_500_referral_codes_and_export(login_as, session, make_campaign):
    campaign = make_campaign(name="Referrals", campaign_type="referral")
    session.commit()
    admin = login_as("admin")
    assert admin.get(f"/admin/campaigns/{campaign.id}/generate").status_code == 200
    data = {**GOOD_COUPON, "count": "500", "prefix": "ref-", "length": "8", "max_uses": "1",
            "discount_type": "fixed_amount", "coupon_type": "fixed_amount_discount", "discount_value": "10.00"}
    data.pop("code")
    response = admin.post(f"/admin/campaigns/{campaign.id}/generate", data=data)
    assert response.status_code == 302
    codes = list(session.scalars(select(Coupon.code).where(Coupon.campaign_id == campaign.id)))
    assert len(codes) == len(set(codes)) == 500
    assert all(c.startswith("REF-") and len(c) == 12 and set(c[4:]) <= set(ALPHABET) for c in codes)
    export = admin.get(f"/admin/campaigns/{campaign.id}/codes.csv")
    assert export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][0] == "code" and len(rows) == 501 and {r[0] for r in rows[1:]} == set(codes)
    too_many = admin.post(f"/admin/campaigns/{campaign.id}/generate", data={**data, "count": "5001"})
    assert too_many.status_code == 422
    assert count(session, Coupon) == 500


def test_campaign_page_counts_production_only_unless_asked(login_as, session, make_campaign, make_coupon,
                                                          make_user, attempt):
    from app.coupons import redemption

    campaign = make_campaign(name="Figures")
    coupon = make_coupon(campaign=campaign, max_uses_per_user=None)
    redemption.redeem(session, coupon, attempt(make_user()))
    redemption.redeem(session, coupon, attempt(make_user(test=True), is_test=True, ip_address="192.0.2.7"))
    admin = login_as("admin")
    page = admin.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert "$20.00</strong> of $1,000.00" in page and "1 of 1" in page and 'id="redemptions-chart"' in page
    with_test = admin.get(f"/admin/campaigns/{campaign.id}?include_test=1").get_data(as_text=True)
    assert "$40.00</strong> of $1,000.00" in with_test and "2 of 2" in with_test


def test_reverse_from_the_coupon_page(login_as, session, make_coupon, make_campaign, make_user, attempt):
    from app.coupons import redemption

    campaign = make_campaign()
    coupon = make_coupon(campaign=campaign)
    row = redemption.redeem(session, coupon, attempt(make_user()))
    session.commit()
    admin = login_as("admin")
    assert b"Reverse redemption" in admin.get(f"/admin/coupons/{coupon.id}").data
    assert admin.post(f"/admin/coupons/redemptions/{row.id}/reverse", data={"reason": ""}).status_code == 302
    session.expire_all()
    assert row.status == "success"
    assert login_as("analyst").post(f"/admin/coupons/redemptions/{row.id}/reverse",
                                    data={"reason": "x"}).status_code == 403
    admin.post(f"/admin/coupons/redemptions/{row.id}/reverse", data={"reason": "Chargeback"})
    session.expire_all()
    assert row.status == "reversed" and campaign.spent == Decimal("0.00")


def test_rules_are_made_on_the_form_without_json(login_as, session, make_coupon):
    """Issue 18: staff typed rule parameters as JSON; each rule now has its own field."""
    coupon = make_coupon()
    session.commit()
    admin = login_as("admin")
    url = f"/admin/coupons/{coupon.id}/rules"
    page = admin.get(f"/admin/coupons/{coupon.id}").get_data(as_text=True)
    assert 'name="domains"' in page and 'name="min_balance"' in page and 'name="days"' in page
    bad = admin.post(url, data={"rule_type": "minimum_credit_balance", "min_balance": "lots"})
    assert bad.status_code == 422 and b'id="min_balance-error"' in bad.data and b'value="lots"' in bad.data
    wrong = admin.post(url, data={"rule_type": "specific_email_domain", "domains": "not a domain"})
    assert wrong.status_code == 422 and b'id="domains-error"' in wrong.data
    assert count(session, ValidationRule) == 0
    assert admin.post(url, data={"rule_type": "specific_email_domain", "domains": "Company.com, partner.org"}).status_code == 302
    assert admin.post(url, data={"rule_type": "minimum_credit_balance", "min_balance": "1,000"}).status_code == 302
    assert admin.post(url, data={"rule_type": "first_time_user_only"}).status_code == 302
    values = {r.rule_type: r.rule_value for r in session.scalars(select(ValidationRule))}
    assert values == {"specific_email_domain": {"domains": ["company.com", "partner.org"]},
                      "minimum_credit_balance": {"min_balance": 1000}, "first_time_user_only": {}}


def test_coupon_list_sorts_by_a_column_and_exports_the_filtered_list(login_as, session, make_coupon):
    for code in ("SORTB", "SORTC", "SORTA"):
        make_coupon(code=code)
    make_coupon(code="SORTOFF", is_active=False)
    session.commit()
    analyst = login_as("analyst")
    active_codes = sorted(session.scalars(select(Coupon.code).where(Coupon.is_active.is_(True))).all())
    assert {"SORTA", "SORTB", "SORTC"} <= set(active_codes) and "SORTOFF" not in active_codes
    page = analyst.get("/admin/coupons?state=active&sort=code").get_data(as_text=True)
    shown = [c for c in active_codes if f"<code>{c}</code>" in page]
    positions = [page.index(f"<code>{c}</code>") for c in shown]
    assert shown == active_codes[:len(shown)] and positions == sorted(positions)
    assert 'aria-sort="ascending"' in page
    backwards = analyst.get("/admin/coupons?state=active&sort=-code").get_data(as_text=True)
    assert backwards.index(f"<code>{active_codes[-1]}</code>") < backwards.index(f"<code>{active_codes[0]}</code>")
    assert analyst.get("/admin/coupons?sort=no_such_column").status_code == 200  # the default order instead

    export = analyst.get("/admin/coupons/export.csv?state=active&sort=-code")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [r["code"] for r in rows] == sorted(active_codes, reverse=True)
    assert all(r["active"] == "yes" and r["valid_until"].endswith("+00:00") for r in rows)
    assert login_as("auditor").get("/admin/coupons/export.csv").status_code == 403  # no coupons.view
