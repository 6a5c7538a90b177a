"""Staff screens: permission-checked, filters and pagination, the proration preview fragment,
actions audited with their reason, bad input re-rendered with the message, nothing written."""
from decimal import Decimal

import pytest

from app.billing.models import Invoice, ProrationEvent, RefundRequest, SubscriptionTier
from app.core import clock
from app.core.audit import AuditEntry
from tests.billing.conftest import utc


@pytest.fixture
def nov15():
    clock.freeze(utc("2025-11-15T10:00:00"))
    yield
    clock.reset()


def test_list_filters_scope_search_and_pages(login_as, make_user, make_sub):
    prod = [make_sub("pro", user=make_user(email=f"cust{i}@example.com")) for i in range(3)]
    test_sub = make_sub("enterprise_pro", user=make_user(email="tester@example.com", test=True))
    client = login_as("support")
    page = client.get("/admin/billing/subscriptions").get_data(as_text=True)
    assert "cust0@example.com" in page and "tester@example.com" not in page  # production only by default
    page = client.get("/admin/billing/subscriptions?include_test=only").get_data(as_text=True)
    assert "tester@example.com" in page and "cust0@example.com" not in page
    page = client.get("/admin/billing/subscriptions?include_test=1&tier=enterprise_pro").get_data(as_text=True)
    assert "tester@example.com" in page and "cust1@example.com" not in page
    page = client.get("/admin/billing/subscriptions?q=cust2").get_data(as_text=True)
    assert "cust2@example.com" in page and "cust1@example.com" not in page
    first = client.get("/admin/billing/subscriptions?limit=2", headers={"HX-Request": "true"})
    text = first.get_data(as_text=True)
    assert "<html" not in text and "Load more" in text and text.count("<tr><td>") == 2  # the table block: rows after its header
    assert prod[2].user.email in text  # newest first
    assert client.get("/admin/billing/subscriptions?limit=abc").status_code == 422
    assert test_sub.is_test


def test_views_are_permission_checked(login_as, make_sub):
    sub = make_sub("pro")
    nobody = login_as()  # staff without roles
    assert nobody.get("/admin/billing/subscriptions").status_code == 403
    analyst = login_as("analyst")
    assert analyst.get(f"/admin/billing/subscriptions/{sub.id}").status_code == 200
    response = analyst.post(f"/admin/billing/subscriptions/{sub.id}/cancel", data={"when": "now", "reason": "x"})
    assert response.status_code == 403 and "subscriptions.cancel" in response.get_data(as_text=True)
    assert analyst.get("/admin/billing/revenue").status_code == 200
    assert login_as("support").get("/admin/billing/revenue").status_code == 403


def test_preview_fragment_then_apply_with_reason(login_as, make_sub, session, nov15):
    sub = make_sub("pro")
    client = login_as("ops")
    session.commit()  # a refused request rolls back: keep the fixtures
    preview = client.post(f"/admin/billing/subscriptions/{sub.id}/preview", headers={"HX-Request": "true"},
                          data={"to_tier": "enterprise_pro", "effective_date": "2025-11-15"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "<html" not in html
    assert 'id="net-charge">$100.00<' in html and "15 of 30" in html
    missing = client.post(f"/admin/billing/subscriptions/{sub.id}/change",
                          data={"to_tier": "enterprise_pro", "effective_date": "2025-11-15"})
    assert missing.status_code == 422 and "Give a reason" in missing.get_data(as_text=True)
    assert session.query(ProrationEvent).count() == 0
    done = client.post(f"/admin/billing/subscriptions/{sub.id}/change", follow_redirects=True,
                       data={"to_tier": "enterprise_pro", "effective_date": "2025-11-15", "reason": "customer asked"})
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "Enterprise Pro" in page and "(proration)" in page
    invoice = session.query(Invoice).filter_by(subscription_id=sub.id, kind="proration").one()
    assert invoice.total == Decimal("100.00") and invoice.number in page
    entry = session.query(AuditEntry).filter_by(action="billing.subscription_tier_change").one()
    assert entry.reason == "customer asked" and entry.actor_id == client.user.id
    assert entry.before["tier"] == "pro" and entry.after["net_charge"] == "100.00"


@pytest.mark.parametrize("to_tier,message", [("pro", "already on Pro"), ("platinum", "no tier called")])
def test_bad_preview_input(login_as, make_sub, to_tier, message):
    sub = make_sub("pro")
    response = login_as("ops").post(f"/admin/billing/subscriptions/{sub.id}/preview", data={"to_tier": to_tier})
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_cancel_pause_reactivate_are_audited(login_as, make_sub, session, nov15):
    sub = make_sub("pro")
    client = login_as("ops")
    session.commit()
    client.post(f"/admin/billing/subscriptions/{sub.id}/pause", data={"reason": "holiday"})
    assert sub.status == "paused"
    client.post(f"/admin/billing/subscriptions/{sub.id}/reactivate", data={"reason": "back"})
    assert sub.status == "active"
    client.post(f"/admin/billing/subscriptions/{sub.id}/cancel", data={"when": "period_end", "reason": "leaving"})
    assert sub.cancel_at_period_end and sub.status == "active"
    client.post(f"/admin/billing/subscriptions/{sub.id}/cancel", data={"when": "now", "reason": "now please"})
    assert sub.status == "cancelled"
    refused = client.post(f"/admin/billing/subscriptions/{sub.id}/change", data={"to_tier": "pro_max", "reason": "x"})
    assert refused.status_code == 409 and "cancelled" in refused.get_data(as_text=True)
    actions = [e.action for e in session.query(AuditEntry).order_by(AuditEntry.id)
               if e.action.startswith("billing.subscription")]
    assert actions == ["billing.subscription_paused", "billing.subscription_reactivated",
                       "billing.subscription_cancel_scheduled", "billing.subscription_cancelled"]


def test_refund_needs_sudo_and_large_ones_need_another_admin(app, login_as, make_user, make_sub, sudo, session,
                                                             nov15):
    sub = make_sub("enterprise_pro", card="4242424242424242")
    from app.billing import collection, invoices

    collection.collect(session, invoices.period_invoice(session, sub), trigger="signup")
    payment = session.query(collection.PaymentTransaction).filter_by(subscription_id=sub.id).one()
    first_admin = login_as("admin")
    ops, second_admin = login_as("ops"), login_as("admin")
    session.commit()
    url = f"/admin/billing/subscriptions/{sub.id}/refund"
    assert "/auth/sudo" in first_admin.post(url, data={"payment_id": payment.id, "amount": "10", "reason": "x"}).location
    sudo(first_admin)
    too_much = first_admin.post(url, data={"payment_id": payment.id, "amount": "300.00", "reason": "oops"})
    assert too_much.status_code == 422 and "At most 299.99" in too_much.get_data(as_text=True)
    small = first_admin.post(url, data={"payment_id": payment.id, "amount": "20.00", "reason": "goodwill"})
    assert small.status_code == 302 and payment.refunded_amount == Decimal("20.00")
    big = first_admin.post(url, data={"payment_id": payment.id, "amount": "150.00", "reason": "outage credit"})
    assert big.status_code == 302 and payment.refunded_amount == Decimal("20.00")
    request = session.query(RefundRequest).one()
    assert request.status == "pending" and request.amount == Decimal("150.00")
    own = first_admin.post(f"/admin/billing/refund-requests/{request.id}/approve", data={"note": ""})
    assert own.status_code == 302 and request.status == "pending"
    sudo(ops)
    assert ops.post(f"/admin/billing/refund-requests/{request.id}/approve").status_code == 403
    sudo(second_admin)
    queue = second_admin.get("/admin/billing/refund-requests?include_test=1", follow_redirects=True)  # -> approvals
    assert queue.request.path == "/admin/approvals" and "Refund of $150.00" in queue.get_data(as_text=True)
    second_admin.post(f"/admin/billing/refund-requests/{request.id}/approve", data={"note": "ok"})
    assert request.status == "approved" and payment.refunded_amount == Decimal("170.00")
    actions = {e.action for e in session.query(AuditEntry)}
    assert {"billing.refund", "billing.refund_requested", "billing.refund_approved"} <= actions


def test_tier_editor_validates_and_audits(login_as, sudo, tiers, session):
    client = sudo(login_as("admin"))
    support = login_as("support")
    session.commit()
    pro = tiers["pro"]
    url = f"/admin/billing/tiers/{pro.id}"
    assert client.get(url).status_code == 200
    form = {"display_name": "Pro", "monthly_price": "109.99", "annual_price": "", "monthly_credits": "12000",
            "max_rollover": "2000", "features": '{"device_activations": 3, "advanced_analytics": true}',
            "is_active": "y", "reason": "price review"}
    bad = client.post(url, data={**form, "features": '{"device_activations": "many"}'})
    assert bad.status_code == 422 and "whole number" in bad.get_data(as_text=True)
    bad = client.post(url, data={**form, "monthly_price": "9.999"})
    assert bad.status_code == 422 and session.get(SubscriptionTier, pro.id).monthly_price == Decimal("99.99")
    assert client.post(url, data=form).status_code == 302
    assert pro.monthly_price == Decimal("109.99") and pro.monthly_credits == 12000
    entry = session.query(AuditEntry).filter_by(action="billing.tier_updated").one()
    assert entry.before["monthly_price"] == "99.99" and entry.after["monthly_price"] == "109.99"
    assert support.get(url).status_code == 403


def test_pack_editor(login_as, sudo, session):
    client = sudo(login_as("admin"))
    session.commit()
    bad = client.post("/admin/billing/packs/new", data={"name": "Big", "credits": "-5", "price": "10", "reason": "r"})
    assert bad.status_code == 422 and "Credits go from 1" in bad.get_data(as_text=True)
    ok = client.post("/admin/billing/packs/new", data={"name": "Big", "credits": "50000", "price": "150.00",
                                                       "is_active": "y", "reason": "launch"})
    assert ok.status_code == 302
    assert "Big" in client.get("/admin/billing/packs").get_data(as_text=True)


def test_failed_payments_queue_and_retry(login_as, make_sub, session, nov15):
    sub = make_sub("pro", card="4000000000000341")
    from app.billing import collection, invoices

    collection.collect(session, invoices.period_invoice(session, sub), trigger="renewal")
    client = login_as("ops")
    page = client.get("/admin/billing/failed-payments").get_data(as_text=True)
    assert sub.user.email in page and "Past due" in page
    response = client.post(f"/admin/billing/failed-payments/{sub.id}/retry", follow_redirects=True)
    assert "the payment failed" in response.get_data(as_text=True)


def test_revenue_is_production_only_unless_asked(login_as, make_user, make_sub):
    make_sub("pro")
    make_sub("enterprise_pro", user=make_user(test=True))
    client = login_as("analyst")
    assert 'id="mrr">$99.99<' in client.get("/admin/billing/revenue").get_data(as_text=True)
    assert 'id="mrr">$399.98<' in client.get("/admin/billing/revenue?include_test=1").get_data(as_text=True)


def test_navigation_lists_billing_screens(login_as):
    page = login_as("admin").get("/admin").get_data(as_text=True)
    for label in ("Subscriptions", "Failed payments", "Approvals", "Tiers", "Credit packs", "Revenue"):
        assert label in page


def test_subscriptions_sort_by_period_end_and_export_the_filtered_list(login_as, make_user, make_sub):
    make_sub("pro", start="2025-11-20", user=make_user(email="late@example.com"))
    make_sub("pro", start="2025-11-02", user=make_user(email="early@example.com"))
    client = login_as("support")
    body = client.get("/admin/billing/subscriptions?sort=period_end&q=@example.com").get_data(as_text=True)
    assert body.index("early@example.com") < body.index("late@example.com") and 'aria-sort="ascending"' in body
    body = client.get("/admin/billing/subscriptions?sort=-period_end&q=@example.com").get_data(as_text=True)
    assert body.index("late@example.com") < body.index("early@example.com")
    fallback = client.get("/admin/billing/subscriptions?sort=nonsense&q=@example.com")  # the default order, not 422
    assert fallback.status_code == 200 and 'aria-sort="ascending"' not in fallback.get_data(as_text=True)
    assert "early@example.com" in fallback.get_data(as_text=True) and "late@example.com" in fallback.get_data(as_text=True)
    live = client.get("/admin/billing/subscriptions?q=early&tier=pro&include_test=0", headers={"HX-Request": "true"})
    live_body = live.get_data(as_text=True)  # a filter change re-renders the headers: their links keep the filters
    assert 'id="subscriptions-csv"' in live_body and "late@example.com" not in live_body
    header = live_body[live_body.index('class="sort-link"') - 300:live_body.index('class="sort-link"')]
    assert "q=early" in header and "tier=pro" in header and "include_test=0" in header
    export = client.get("/admin/billing/subscriptions/export.csv?sort=period_end&q=early")
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0].startswith("id,email") and [l.split(",")[1] for l in lines[1:]] == ["early@example.com"]


def test_a_pending_cancellation_shows_its_date_and_is_on_the_timeline(login_as, make_sub, session):
    sub = make_sub("pro")
    sub.cancel_at_period_end = True
    session.commit()
    page = login_as("support").get(f"/admin/billing/subscriptions/{sub.id}").get_data(as_text=True)
    day = f"{sub.current_period_end:%Y-%m-%d}"
    assert 'id="cancel-pending"' in page and day in page
    assert 'class="timeline-cancellation"' in page and "Cancellation at the end of the period" in page
