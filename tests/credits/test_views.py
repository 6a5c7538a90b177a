"""Credits screens: navigation and permissions, grants within and above the cap with approval,
staff deductions, the ledger, BYOK keys, the system page (production only unless asked)."""
from __future__ import annotations

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.credits import balances, metering
from app.credits.models import CreditGrantRequest, Provider, VendorKey

HX = {"HX-Request": "true"}


def audited(session, action):
    return session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def test_screens_are_in_the_navigation_and_permission_checked(login_as, priced):
    analyst = login_as("analyst")
    home = analyst.get("/admin").data
    assert b'href="/admin/credits/"' in home and b'href="/admin/credits/pricing/"' in home
    support = login_as("support")
    home = support.get("/admin").data
    assert b'href="/admin/credits/"' in home and b'href="/admin/credits/pricing/"' not in home
    assert support.get("/admin/credits/pricing/").status_code == 403
    auditor = login_as("auditor")
    assert auditor.get("/admin/credits/").status_code == 403
    refused = auditor.get("/admin/credits/users/1")
    assert refused.status_code == 403 and b"credits.view_balance" in refused.data


def test_system_page_is_production_only_unless_asked(login_as, priced, funded, session):
    real, tester = funded(subscription=1_000), funded(subscription=1_000, test=True)
    metering.calculate_and_deduct(session, real.id, "gpt-4-turbo", 500, 300, "r1")
    metering.calculate_and_deduct(session, tester.id, "gpt-4-turbo", 500, 300, "t1")
    ops = login_as("ops")
    page = ops.get("/admin/credits/").data.decode()
    assert real.email in page and tester.email not in page and "production data only" in page
    page = ops.get("/admin/credits/?include_test=1").data.decode()
    assert tester.email in page and "Viewing test data" in page
    found = ops.get(f"/admin/credits/?q={real.email[:12]}", headers=HX)
    assert real.email.encode() in found.data and b"<html" not in found.data


def test_ops_grants_within_the_cap_and_above_it_asks_an_admin(login_as, priced, funded, session):
    user = funded(subscription=100)
    session.commit()
    ops = login_as("ops")
    page = ops.get(f"/admin/credits/users/{user.id}").data
    assert b"Your cap: 250,000 credits per grant" in page and b"Deduct credits" not in page
    done = ops.post(f"/admin/credits/users/{user.id}/grant", data={"amount": "250000", "reason": "Outage refund"})
    assert done.status_code == 302
    assert balances.get_balance(session, user.id).bonus_credits == 250_000
    asked = ops.post(f"/admin/credits/users/{user.id}/grant", data={"amount": "300000", "reason": "Big trial"},
                     follow_redirects=True)
    assert b"approval request was sent" in asked.data
    request = session.scalars(select(CreditGrantRequest)).one()
    assert request.status == "pending" and balances.get_balance(session, user.id).bonus_credits == 250_000
    assert b"Waiting for an administrator" in asked.data  # ops cannot approve its own request
    admin = login_as("admin")
    system = admin.get("/admin/credits/").data
    assert f"/admin/credits/requests/{request.id}/approve".encode() in system
    approved = admin.post(f"/admin/credits/requests/{request.id}/approve", data={"note": "ok"},
                          follow_redirects=True)
    assert b"Approved: 300,000 credits" in approved.data
    assert balances.get_balance(session, user.id).bonus_credits == 550_000
    assert [e.actor_id for e in audited(session, "credits.granted")] == [ops.user.id]
    assert [e.actor_id for e in audited(session, "credits.grant_approved")] == [admin.user.id]


def test_grant_form_errors_change_nothing(login_as, priced, funded, session):
    user = funded(subscription=100)
    session.commit()
    ops = login_as("ops")
    for data, message in (({"amount": "", "reason": "x y z"}, b"whole number"),
                          ({"amount": "10", "reason": ""}, b"Give a reason"),
                          ({"amount": "-4", "reason": "refund"}, b"Give from 1 to"),
                          ({"amount": "10", "reason": "ok reason", "expires_on": "2001-01-01"}, b"in the future")):
        response = ops.post(f"/admin/credits/users/{user.id}/grant", data=data)
        assert response.status_code == 422 and message in response.data, data
    assert balances.get_balance(session, user.id).total == 100
    assert audited(session, "credits.granted") == []


def test_staff_deduction(login_as, priced, funded, session):
    user = funded(subscription=100)
    session.commit()
    assert login_as("ops").post(f"/admin/credits/users/{user.id}/deduct",
                                data={"amount": "5", "reason": "x"}).status_code == 403
    admin = login_as("admin")
    too_much = admin.post(f"/admin/credits/users/{user.id}/deduct", data={"amount": "500", "reason": "oops"})
    assert too_much.status_code == 422 and b"balance is 100" in too_much.data
    admin.post(f"/admin/credits/users/{user.id}/deduct", data={"amount": "40", "reason": "Duplicate grant"})
    assert balances.get_balance(session, user.id).total == 60
    assert audited(session, "credits.deducted")[0].reason == "Duplicate grant"


def test_ledger_pages_and_filters(login_as, priced, funded, session):
    user = funded(subscription=100_000)
    for i in range(30):
        metering.calculate_and_deduct(session, user.id, "gpt-4-turbo", 500, 300, f"req-{i:02d}")
    analyst = login_as("analyst")
    page = analyst.get(f"/admin/credits/users/{user.id}").data.decode()
    assert page.count("req-") == 25 and "req-29" in page and "Older transactions" in page
    cursor = page.split("cursor=")[1].split("&")[0].split('"')[0]
    older = analyst.get(f"/admin/credits/users/{user.id}?cursor={cursor}", headers=HX).data.decode()
    assert "<html" not in older and "req-04" in older and "req-05" not in older and "Monthly allocation" in older
    only = analyst.get(f"/admin/credits/users/{user.id}?type=allocation", headers=HX).data.decode()
    assert "req-" not in only and "Monthly allocation" in only
    bad = analyst.get(f"/admin/credits/users/{user.id}?start=not-a-date", headers=HX)
    assert b"is a date such as" in bad.data


def test_byok_keys_on_the_user_page(login_as, priced, funded, session):
    user, pro = funded(tier="perpetual"), funded(tier="pro")
    session.commit()
    ops = login_as("ops")
    openai = priced.scalar(select(Provider.id).where(Provider.vendor_name == "openai"))
    saved = ops.post(f"/admin/credits/users/{user.id}/vendor-keys",
                     data={"provider_id": str(openai), "api_key": "sk-secret-value-abcd"}, follow_redirects=True)
    assert b"ending in abcd" in saved.data and b"sk-secret-value" not in saved.data
    assert b"\xe2\x80\xa6abcd" in saved.data  # shown as …abcd
    refused = ops.post(f"/admin/credits/users/{pro.id}/vendor-keys",
                       data={"provider_id": str(openai), "api_key": "sk-secret-value-abcd"})
    assert refused.status_code == 422 and b"sk-secret-value" not in refused.data
    assert priced.scalars(select(VendorKey)).one().last_four == "abcd"
    assert login_as("support").post(f"/admin/credits/users/{user.id}/vendor-keys",
                                    data={"provider_id": "1", "api_key": "sk-x-1234567"}).status_code == 403


def test_rebuilding_a_day_of_summaries(login_as, priced, session):
    admin = login_as("admin")
    response = admin.post("/admin/credits/summaries/rebuild", data={"day": "2025-11-08"}, follow_redirects=True)
    assert b"Summaries for 2025-11-08: finished" in response.data
    assert audited(session, "credits.summaries_rebuild_requested")[0].actor_id == admin.user.id


def test_the_form_helper_answers_htmx_with_a_redirect_and_a_refusal_with_what_was_typed(login_as, priced, funded,
                                                                                      session):
    """Issue 19, core/forms.handle_form: a form posted by htmx with no fragment of its own is sent to
    the page (HX-Redirect, never a whole page swapped into a cell); a refused one comes back 422
    with the typed values and the message on its field, having written nothing."""
    user = funded(subscription=100)
    session.commit()
    ops = login_as("ops")
    done = ops.post(f"/admin/credits/users/{user.id}/grant", data={"amount": "10", "reason": "Outage refund"},
                    headers=HX)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == f"/admin/credits/users/{user.id}"
    assert balances.get_balance(session, user.id).bonus_credits == 10
    before = len(audited(session, "credits.granted"))
    refused = ops.post(f"/admin/credits/users/{user.id}/grant", data={"amount": "-5", "reason": "Typed reason"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Typed reason" in body and "Give from 1 to" in body
    assert len(audited(session, "credits.granted")) == before
    assert balances.get_balance(session, user.id).bonus_credits == 10
