"""The staff users list: search, filters, keyset pages, HTMX live filter and load more."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

HX = {"HX-Request": "true"}


def _emails(body: str) -> list[str]:
    return re.findall(r'<a href="/admin/(?:users|customers)/\d+">([^<]+)</a>', body)


@pytest.fixture
def people(make_user, frozen_clock):
    """Created a minute apart, so newest-first order is known."""
    made = {}
    for email, kw in [("ana.ops@rephlo.ai", {"roles": ("ops",), "first_name": "Ana", "last_name": "Lopez"}),
                      ("ben.support@rephlo.ai", {"roles": ("support",), "first_name": "Ben", "last_name": "Ode"}),
                      ("qa.staff@rephlo.ai", {"roles": ("analyst",), "test": True, "first_name": "Quinn"}),
                      ("customer_1@example.com", {"staff": False, "first_name": "Cara", "last_name": "Lopez"}),
                      ("sandbox%user@example.com", {"staff": False, "test": True})]:
        frozen_clock.advance(timedelta(minutes=1))
        made[email] = make_user(email, **kw)
    return made


def test_customers_and_staff_by_default_newest_first(login_as, people, frozen_clock):
    """Support looks customers up here: the default finds them; staff link to their user page,
    customers to the customer page."""
    frozen_clock.advance(timedelta(minutes=1))
    client = login_as("support")
    body = client.get("/admin/users?q=lopez").get_data(as_text=True)
    assert _emails(body) == ["customer_1@example.com", "ana.ops@rephlo.ai"]
    assert f'href="/admin/customers/{people["customer_1@example.com"].id}"' in body
    assert f'href="/admin/users/{people["ana.ops@rephlo.ai"].id}"' in body
    staff = client.get("/admin/users?q=rephlo.ai&scope=staff").get_data(as_text=True)
    assert _emails(staff) == ["qa.staff@rephlo.ai", "ben.support@rephlo.ai", "ana.ops@rephlo.ai"]
    assert 'badge-test">Test</span>' in staff
    customers = client.get("/admin/users?q=lopez&scope=customers").get_data(as_text=True)
    assert _emails(customers) == ["customer_1@example.com"]


@pytest.mark.parametrize("query, expected", [
    ("q=lopez&scope=all", ["customer_1@example.com", "ana.ops@rephlo.ai"]),  # last name
    ("q=Ana Lopez", ["ana.ops@rephlo.ai"]),  # full name
    ("q=BEN.SUPPORT", ["ben.support@rephlo.ai"]),  # case-insensitive email
    ("q=%25&scope=all", ["sandbox%user@example.com"]),  # % is a character, not a wildcard
    ("q=_1&scope=all", ["customer_1@example.com"]),
    ("q=example.com&scope=all&include_test=only", ["sandbox%user@example.com"]),
    ("q=example.com&scope=all&include_test=0", ["customer_1@example.com"]),
    ("q=rephlo.ai&include_test=only&scope=staff", ["qa.staff@rephlo.ai"]),
    ("q=example.com&scope=all&include_test=fake", ["sandbox%user@example.com", "customer_1@example.com"]),
    ("q=nobody-here", []),
])
def test_search_and_filters(login_as, make_user, people, query, expected):
    viewer = make_user("viewer@staff.test", roles=("analyst",))
    body = login_as(user=viewer).get(f"/admin/users?{query}").get_data(as_text=True)
    assert _emails(body) == expected
    if not expected:
        assert "No user matches these filters." in body


def test_live_filter_returns_the_results_fragment(login_as, people):
    response = login_as("ops").get("/admin/users?q=ben", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="user-results"')
    assert _emails(body) == ["ben.support@rephlo.ai"]


def test_load_more_walks_every_page_once(login_as, make_user, frozen_clock):
    for n in range(7):
        frozen_clock.advance(timedelta(seconds=1))
        make_user(f"pager{n}@example.com", staff=False)
    client = login_as("ops")
    body = client.get("/admin/users?q=pager&scope=all&limit=3").get_data(as_text=True)
    seen = _emails(body)
    pages = 1
    while (more := re.search(r'hx-get="([^"]+)"[^>]*>Load more', body)):
        body = client.get(more.group(1).replace("&amp;", "&"), headers=HX).get_data(as_text=True)
        assert body.lstrip().startswith("<tr")
        seen += _emails(body)
        pages += 1
    assert pages == 3 and seen == [f"pager{n}@example.com" for n in range(6, -1, -1)]


def test_without_javascript_next_page_is_a_full_page(login_as, make_user):
    for n in range(3):
        make_user(f"plain{n}@example.com", staff=False)
    client = login_as("ops")
    first = client.get("/admin/users?q=plain&scope=all&limit=2").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)" hx-get', first).group(1).replace("&amp;", "&")
    second = client.get(link).get_data(as_text=True)
    assert "<html" in second and "Back to the first page" in second and len(_emails(second)) == 1


@pytest.mark.parametrize("query, message", [
    ("scope=everyone", "Show all users, customers only or staff only."),
    ("limit=1000", "limit must be a whole number from 1 to 100."),
    ("q=" + "x" * 201, "Search for at most 200 characters."),
])
def test_bad_filters_are_422(login_as, query, message):
    response = login_as("ops").get(f"/admin/users?{query}")
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_deleted_users_are_not_listed(login_as, make_user, frozen_clock):
    make_user("gone@example.com", staff=False, deleted_at=frozen_clock.now())
    assert _emails(login_as("ops").get("/admin/users?q=gone&scope=all").get_data(as_text=True)) == []


def test_needs_users_view(login_as):
    response = login_as("auditor").get("/admin/users")
    assert response.status_code == 403 and b"users.view" in response.data


def test_nav_links_only_what_the_user_may_open(login_as):
    auditor = login_as("auditor").get("/admin").get_data(as_text=True)
    assert 'href="/admin/users"' not in auditor and 'href="/admin/audit"' in auditor
    support = login_as("support").get("/admin").get_data(as_text=True)
    assert 'href="/admin/users"' in support and 'href="/admin/audit"' not in support
    assert 'href="/admin/roles"' in support and 'href="/admin/roles/changes"' not in support


def test_nav_marks_only_the_closest_item_current(login_as):
    body = login_as("admin").get("/admin/roles/changes").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', body) == ["/admin/roles/changes"]


def test_sortable_columns_page_by_keyset_and_the_csv_follows_the_list(login_as, people):
    client = login_as("support")
    body = client.get("/admin/users?q=rephlo.ai&sort=email").get_data(as_text=True)
    assert _emails(body) == ["ana.ops@rephlo.ai", "ben.support@rephlo.ai", "qa.staff@rephlo.ai"]
    assert 'aria-sort="ascending"' in body and "sort=-email" in body  # the header flips the direction
    first = client.get("/admin/users?q=rephlo.ai&sort=-email&limit=2").get_data(as_text=True)
    assert _emails(first) == ["qa.staff@rephlo.ai", "ben.support@rephlo.ai"]
    more = re.search(r'hx-get="([^"]+cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    assert "sort=-email" in more
    assert _emails(client.get(more).get_data(as_text=True)) == ["ana.ops@rephlo.ai"]
    unlisted = client.get("/admin/users?sort=password_hash")  # not a sortable column: the default order instead
    assert unlisted.status_code == 200 and "password_hash" not in unlisted.get_data(as_text=True)
    assert 'aria-sort="descending"' in unlisted.get_data(as_text=True)  # Created, newest first
    export = client.get("/admin/users/export.csv?q=lopez&sort=email")
    lines = export.get_data(as_text=True).splitlines()
    assert export.mimetype == "text/csv" and lines[0].startswith("id,email")
    assert [line.split(",")[1] for line in lines[1:]] == ["ana.ops@rephlo.ai", "customer_1@example.com"]


def test_a_bad_sort_falls_back_to_the_default_order(login_as, people, frozen_clock):
    """Like the newer lists: a stale or hand-edited ?sort= shows the list newest first, not an error."""
    client = login_as("ops")
    response = client.get("/admin/users?q=lopez&sort=bogus")
    assert response.status_code == 200
    assert _emails(response.get_data(as_text=True)) == ["customer_1@example.com", "ana.ops@rephlo.ai"]
    export = client.get("/admin/users/export.csv?q=lopez&sort=-bogus")
    assert export.status_code == 200 and export.get_data(as_text=True).count("\n") == 3


def test_the_live_filter_re_renders_sort_headers_that_keep_the_filters(login_as, people):
    body = login_as("ops").get("/admin/users?q=lopez&scope=customers&include_test=0", headers=HX).get_data(as_text=True)
    assert 'id="users-csv"' in body  # the export link follows the filters too
    sort_link = body[body.index('class="sort-link"') - 300:body.index('class="sort-link"')]
    assert "q=lopez" in sort_link and "scope=customers" in sort_link and "include_test=0" in sort_link


def test_a_history_restore_of_a_pushed_filter_url_gets_the_whole_page(login_as, people):
    """A live filter pushes its URL; going back to it when htmx has no cached copy asks with
    HX-History-Restore-Request and must get the whole page, not the results fragment."""
    body = login_as("ops").get("/admin/users?q=ben", headers={**HX, "HX-History-Restore-Request": "true"})
    text = body.get_data(as_text=True)
    assert "<html" in text and _emails(text) == ["ben.support@rephlo.ai"]
