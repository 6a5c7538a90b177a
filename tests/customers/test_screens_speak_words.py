"""Issue 18 item 7: no raw internals on screen. Every admin GET screen, rendered with seeded rows
of each kind, may not show a stored code as visible text (snake_case tiers, statuses, ledger
kinds, key types, event types, job names, audit actions), a Python True/False/None standing alone
in a cell, or an ISO timestamp: codes go through the `label` filter, times through `dt`.
Text inside <code> (keys, codes, ids a person may copy), <script>, <style> and attributes is not
what a person reads as words, and is left out."""
from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from tests.rbac.test_permission_matrix import _admin_rules, _url, sample_ids  # noqa: F401  (fixture)

SKIPPED_TAGS = {"script", "style", "code", "pre", "textarea", "template", "title"}
# Where a whole text that is a code ("succeeded", "pro") is a raw value, not a word in a phrase.
VALUE_TAGS = {"td", "th", "dd", "option", "strong", "span", "label", "li", "h1", "h2"}
SNAKE = re.compile(r"(?<![\w@./:=-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w@/-])")
PYTHON_VALUE = re.compile(r"^(True|False|None)$")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\+00:00")


class _Cells(HTMLParser):
    """The visible text of a page, one string per element's own text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.open: list[str] = []
        self.texts: list[str] = []
        self.values: list[str] = []  # texts that are an element's whole value (a cell, a badge, an option)

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED_TAGS:
            self.skip += 1
        if tag not in ("br", "input", "img", "hr", "meta", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in SKIPPED_TAGS and self.skip:
            self.skip -= 1
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(data.strip())
            if self.open and self.open[-1] in VALUE_TAGS:
                self.values.append(data.strip())


def raw_codes(html: str) -> list[str]:
    from app.core.labels import LABELS

    parser = _Cells()
    parser.feed(html)
    found = [text for text in parser.values  # True/False/None, or a whole cell that is a code with a label
             if PYTHON_VALUE.match(text) or (text in LABELS and LABELS[text] != text)]
    for text in parser.texts:
        found += [m.group(0) for m in SNAKE.finditer(text)]
        found += [m.group(0) for m in ISO_TIME.finditer(text)]
    return found


def test_the_detector_finds_what_it_should_and_nothing_else():
    assert raw_codes("<td>past_due</td><td>True</td><td>2025-11-09T12:00:00+00:00</td><td>succeeded</td>") == [
        "past_due", "True", "succeeded", "past_due", "2025-11-09T12:00", "+00:00"]
    assert raw_codes("<td>Past due</td><td>Yes</td><td>customer_1@example.com</td><td><code>pro_max</code></td>"
                     "<td>/admin/users?sort=-created_at</td><a href='/x_y'>Open</a><p>12 <small>active</small></p>") == []


@pytest.fixture
def busy_world(sample_ids, session, make_user):
    """Rows of more kinds than the permission matrix's sample: ledger entries, a grant request,
    a refund request, a fraud detection, a staff audit trail."""
    from app.billing.models import PaymentTransaction, RefundRequest
    from app.credits import balances, grants
    from app.users.models import User

    target = session.get(User, sample_ids["user_id"])
    admin = make_user(roles=("admin",))
    agent = make_user(roles=("support",))
    balances.ensure_balance(session, target.id)
    grants.grant(session, admin, target.id, 500, "Goodwill after the outage")
    grants.request_grant(session, agent, target.id, 900_000, "Outage week")
    payment = PaymentTransaction(user_id=target.id, subscription_id=sample_ids["subscription_id"], kind="charge",
                                 amount=Decimal("49.99"), status="succeeded", idempotency_key="words-charge",
                                 stripe_payment_intent_id="pi_words")
    session.add(payment)
    session.flush()
    session.add(RefundRequest(payment_id=payment.id, subscription_id=sample_ids["subscription_id"],
                              amount=Decimal("10.00"), reason="Charged twice", requested_by_id=agent.id))
    from app.coupons.models import FraudDetection

    session.add(FraudDetection(coupon_id=sample_ids["coupon_id"], user_id=target.id, detection_type="velocity_abuse",
                               severity="high", blocked=True, ip_address="203.0.113.9",
                               details={"distinct_customers": 12, "window_minutes": 60, "user_agent_kind": "browser"}))
    session.commit()
    return sample_ids


def test_no_admin_screen_shows_a_raw_code(app, login_as, sudo, busy_world):
    client = sudo(login_as("super_admin"))
    fraud = client.get("/admin/fraud?include_test=1").get_data(as_text=True)
    assert "Velocity abuse" in fraud and "Distinct customers" in fraud  # the seeded rows are on screen
    offenders = {}
    for rule in _admin_rules(app, "GET"):
        if rule.rule.endswith(".csv"):
            continue  # downloads, not screens
        response = client.get(_url(rule, busy_world) + "?include_test=1")
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        found = raw_codes(response.get_data(as_text=True))
        if found:
            offenders[rule.rule] = sorted(set(found))
    assert offenders == {}, "\n".join(f"{url}: {codes}" for url, codes in offenders.items())


def _debug_context(html, word):  # pragma: no cover - used while fixing screens
    i = html.find(word)
    return html[max(0, i - 300):i + 100]


def test_every_detail_page_has_the_one_back_link(app, login_as, sudo, busy_world):
    """Issue 18 item 9: back links came in three forms or not at all. A page about one thing (a URL
    with an id) or a form for a new one shows exactly one back link, the _back.html partial."""
    client = sudo(login_as("super_admin"))
    missing = {}
    for rule in _admin_rules(app, "GET"):
        if rule.rule.endswith(".csv") or not (rule.arguments or rule.rule.endswith(("/new", "/import", "/batch"))):
            continue
        response = client.get(_url(rule, busy_world))
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        count = response.get_data(as_text=True).count('class="back-link"')
        if count != 1:
            missing[rule.rule] = count
    assert missing == {}
