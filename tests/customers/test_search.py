"""Global search: every kind support is given over the phone finds the customer, grouped by kind."""
from __future__ import annotations

import re

import pytest

HX = {"HX-Request": "true"}


def _groups(body: str) -> list[str]:
    return re.findall(r'<section class="search-group" aria-label="([^"]+)"', body)


@pytest.mark.parametrize("term, group, needle", [
    ("cara.cust", "Customers", "cara.customer@example.com"),
    ("CARA LOPEZ", "Customers", "cara.customer@example.com"),
    ("cara.customer@example.com", "Customers", "cara.customer@example.com"),
    ("cus_CARA123", "Customers", "cara.customer@example.com"),
    ("pi_CARA2", "Payments", "pi_CARA2"),
    ("re_CARA1", "Payments", "Refund"),
    ("cara-wel", "Coupons", "CARA-WELCOME"),
])
def test_each_kind_finds_its_row(login_as, customer_world, term, group, needle):
    body = login_as("support").get("/admin/search", query_string={"q": term}).get_data(as_text=True)
    assert group in _groups(body) and needle in body


def test_ids_numbers_and_keys(login_as, customer_world):
    client = login_as("support")
    w = customer_world
    by_id = client.get(f"/admin/search?q={w.user.id}").get_data(as_text=True)
    assert f'href="/admin/customers/{w.user.id}"' in by_id
    by_number = client.get(f"/admin/search?q={w.invoice.number.lower()}").get_data(as_text=True)
    assert _groups(by_number) == ["Invoices"] and f"/admin/customers/{w.user.id}/invoices/{w.invoice.id}" in by_number
    key = w.license.license_key
    by_key = client.get(f"/admin/search?q={key[:9].lower()}").get_data(as_text=True)
    assert "Licenses" in _groups(by_key) and key in by_key


def test_the_dropdown_fragment_and_bad_input(login_as, customer_world):
    client = login_as("support")
    response = client.get("/admin/search?q=cara", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="global-search-results"')
    assert "<nav" not in body
    nothing = client.get("/admin/search?q=zzz-no-one", headers=HX).get_data(as_text=True)
    assert "Nothing matches" in nothing
    too_long = client.get("/admin/search", query_string={"q": "x" * 201})
    assert too_long.status_code == 422 and "at most 200 characters" in too_long.get_data(as_text=True)
    assert client.get("/admin/search?q=%25%25").status_code == 200  # % is a character


def test_the_top_bar_has_the_box_for_those_who_may_search(login_as):
    page = login_as("support").get("/admin/search").get_data(as_text=True)
    assert 'id="global-search"' in page and 'aria-keyshortcuts="/"' in page and 'class="skip-link"' in page
    auditor = login_as("auditor").get("/admin/licenses").get_data(as_text=True)
    assert 'id="global-search"' not in auditor
    assert login_as("auditor").get("/admin/search?q=x").status_code == 403
