"""The customer page: header, one URL per section, HTMX tabs, permissions per section, the
printable invoice, and links to it from the screens that name a customer."""
from __future__ import annotations

import pytest

HX = {"HX-Request": "true"}


def test_header_and_every_section(login_as, customer_world):
    client = login_as("admin")
    uid = customer_world.user.id
    page = client.get(f"/admin/customers/{uid}").get_data(as_text=True)
    assert 'id="customer-tier">Pro<' in page and 'id="customer-status">Active<' in page
    assert 'id="customer-balance">5,000<' in page and 'badge-ok">live<' in page
    assert 'aria-current="page">Subscription<' in page and "cus_CARA123" in page
    expected = {
        "invoices": [customer_world.invoice.number, "$1,234.56"],
        "payments": ["pi_CARA1", "pi_CARA2", "re_CARA1", "Refunded"],
        "credits": ["5,000", "welcome credits"],
        "licenses": [customer_world.license.license_key, "Cara&#39;s laptop", "Deactivate"],
        "coupons": ["CARA-WELCOME", "$5.00"],
        "keys": ["Cara&#39;s server", customer_world.key.last4],
        "audit": ["Users profile edited", "customer asked", "Licenses created"],
    }
    for slug, needles in expected.items():
        body = client.get(f"/admin/customers/{uid}/{slug}").get_data(as_text=True)
        assert 'aria-current="page">' in body and "customer-header" in body, slug
        for needle in needles:
            assert needle in body, (slug, needle)


def test_a_tab_click_swaps_only_the_section(login_as, customer_world):
    response = login_as("support").get(f"/admin/customers/{customer_world.user.id}/payments", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="customer-section"')
    assert "customer-header" not in body and "pi_CARA2" in body
    assert "HX-Request" in response.headers["Vary"]


def test_sections_follow_the_viewers_permissions(login_as, customer_world):
    uid = customer_world.user.id
    support = login_as("support")
    page = support.get(f"/admin/customers/{uid}").get_data(as_text=True)
    assert 'id="tab-credits"' in page and 'id="tab-audit"' not in page
    assert support.get(f"/admin/customers/{uid}/audit").status_code == 403
    auditor = login_as("auditor")  # no users.view
    assert auditor.get(f"/admin/customers/{uid}").status_code == 403
    assert support.get(f"/admin/customers/{uid}/nonsense").status_code == 404


def test_staff_and_missing_accounts_have_no_customer_page(login_as, make_user):
    client = login_as("admin")
    assert client.get(f"/admin/customers/{make_user(roles=('ops',)).id}").status_code == 404
    assert client.get("/admin/customers/987654321").status_code == 404


def test_printable_invoice(login_as, make_user, customer_world):
    client = login_as("support")
    uid, inv = customer_world.user.id, customer_world.invoice
    body = client.get(f"/admin/customers/{uid}/invoices/{inv.id}").get_data(as_text=True)
    assert inv.number in body and 'id="invoice-total">$1,234.56<' in body and "Pro, monthly" in body
    assert "data-print" in body
    other = make_user(staff=False)
    assert client.get(f"/admin/customers/{other.id}/invoices/{inv.id}").status_code == 404


@pytest.mark.parametrize("path", ["/admin/users?q=cara", "/admin/billing/subscriptions", "/admin/licenses",
                                  "/admin/credits/users/{uid}", "/admin/users/{uid}"])
def test_screens_naming_the_customer_link_to_the_page(login_as, customer_world, path):
    uid = customer_world.user.id
    body = login_as("admin").get(path.format(uid=uid)).get_data(as_text=True)
    assert f'href="/admin/customers/{uid}"' in body
