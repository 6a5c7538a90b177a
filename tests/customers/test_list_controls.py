"""Issue 18 item 9: filters that apply the same way everywhere. Every list's filter form (a GET
form of class "filters" on an admin screen) applies as you type or change (HTMX), puts itself in
the URL (hx-push-url), still works without JavaScript (a submit button in <noscript>), and its
test-data filter is the one `include_test` select labelled "Include test data"."""
from __future__ import annotations

import re

from tests.rbac.test_permission_matrix import _admin_rules, _url, sample_ids  # noqa: F401  (fixture)

FORM = re.compile(r'<form\b(?=[^>]*class="filters")[^>]*method="get"[^>]*>.*?</form>|'
                  r'<form\b[^>]*method="get"(?=[^>]*class="filters")[^>]*>.*?</form>', re.S)
# Not list filters: the search page is a search box with a button (the top bar's search is the live
# one), and the credits screen's period picker redraws figures and charts (class "filters period").
NOT_LISTS = {"/admin/search"}
TEST_DATA_NAMES = re.compile(r'name="(scope|account|data|world|test|show_test)"')


def test_every_list_filter_applies_live_pushes_its_url_and_works_without_javascript(app, login_as, sudo, sample_ids):
    client = sudo(login_as("super_admin"))
    checked, wrong = 0, {}
    for rule in _admin_rules(app, "GET"):
        if rule.rule.endswith(".csv") or rule.rule in NOT_LISTS:
            continue
        response = client.get(_url(rule, sample_ids))
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        for form in FORM.findall(response.get_data(as_text=True)):
            checked += 1
            problems = [name for name, ok in [
                ("hx-get", "hx-get=" in form), ("hx-push-url", 'hx-push-url="true"' in form),
                ("noscript submit", re.search(r'<noscript><button type="submit"', form) is not None),
                ("one test-data name", not (TEST_DATA_NAMES.search(form) and "include_test" not in form)),
                ("test-data label", 'name="include_test"' not in form or "Include test data" in form),
            ] if not ok]
            if problems:
                wrong[rule.rule] = problems
    assert checked >= 10 and wrong == {}
