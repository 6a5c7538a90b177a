"""The audit log and the role change log: filters, keyset pages, HTMX fragments, CSV export."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.core import audit, clock
from app.rbac import logs, service
from app.rbac.models import Role

HX = {"HX-Request": "true"}


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def audit_rows(session, make_user, frozen_clock):
    """Entries on 1, 2 and 3 Nov 2025 by two actors, one of them on a test account."""
    alice = make_user("alice@rephlo.ai", roles=("admin",))
    bob = make_user("bob@rephlo.ai", roles=("ops",))
    tester = make_user("tester@example.com", test=True)
    for day, actor, action, target in [(1, alice, "users.suspended", bob), (2, bob, "credits.granted", alice),
                                       (3, alice, "users.suspended", tester), (3, bob, "auth.logout", bob)]:
        frozen_clock.freeze(datetime(2025, 11, day, 9, 0, tzinfo=timezone.utc))
        audit.record(session, action, actor=actor, target=target, reason=f"day {day}")
        session.flush()  # created_at is set at INSERT time
    frozen_clock.freeze(datetime(2025, 11, 9, 12, 0, tzinfo=timezone.utc))
    return {"alice": alice, "bob": bob, "tester": tester}


def _actions(body: str) -> list[str]:
    return re.findall(r'<tr data-action="([^"]+)"', body)


def test_audit_log_filters(login_as, audit_rows):
    client = login_as("auditor")
    body = client.get("/admin/audit").get_data(as_text=True)
    assert _actions(body) == ["auth.logout", "credits.granted", "users.suspended"]  # test row hidden
    assert "Production rows only." in body
    by_actor = client.get("/admin/audit?actor=alice").get_data(as_text=True)
    assert _actions(by_actor) == ["users.suspended"]
    by_target = client.get(f"/admin/audit?target={audit_rows['alice'].id}").get_data(as_text=True)
    assert _actions(by_target) == ["credits.granted"]
    by_action = client.get("/admin/audit?action=users.suspended&include_test=1").get_data(as_text=True)
    assert _actions(by_action) == ["users.suspended", "users.suspended"]
    assert "Viewing test data" in by_action
    by_dates = client.get("/admin/audit?date_from=2025-11-02&date_to=2025-11-02&include_test=0")
    assert _actions(by_dates.get_data(as_text=True)) == ["credits.granted"]


def test_audit_log_live_filter_answers_with_the_results_fragment(login_as, audit_rows):
    client = login_as("auditor")
    response = client.get("/admin/audit?actor=bob", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="log-results"')
    assert _actions(body) == ["auth.logout", "credits.granted"]
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize("query, message", [
    ("date_from=2025-13-45", "Not a valid date value"),
    ("date_from=2025-11-05&date_to=2025-11-01", "The start date is after the end date."),
    ("action=no.such.action", "Pick an action from the list."),
])
def test_bad_filters_are_422_with_the_message(login_as, audit_rows, query, message):
    client = login_as("auditor")
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert _actions(response.get_data(as_text=True)) == []
    assert client.get(f"/admin/audit/export.csv?{query}").status_code == 422


def test_keyset_pages_with_load_more(login_as, session, make_user, frozen_clock):
    actor = make_user("pager@rephlo.ai", roles=("admin",))
    for n in range(7):
        frozen_clock.advance(timedelta(minutes=1))
        audit.record(session, f"test.event_{n}", actor=actor, target=actor)
        session.flush()
    client = login_as("auditor")
    first = client.get("/admin/audit?actor=pager&limit=3").get_data(as_text=True)
    seen = _actions(first)
    assert seen == ["test.event_6", "test.event_5", "test.event_4"]
    while True:
        more = re.search(r'hx-get="([^"]+)"[^>]*>Load more', first)
        if not more:
            break
        fragment = client.get(more.group(1).replace("&amp;", "&"), headers=HX)
        first = fragment.get_data(as_text=True)
        assert "<table" not in first and first.lstrip().startswith("<tr")
        seen += _actions(first)
    assert seen == [f"test.event_{n}" for n in range(6, -1, -1)]
    assert client.get("/admin/audit?cursor=not-a-cursor").status_code == 422


def _change_history(session, make_user, frozen_clock):
    admin = make_user("boss@rephlo.ai", roles=("admin",))
    carol = make_user("carol@example.com", staff=False)
    tester = make_user("qa.bot@example.com", staff=False, test=True)
    ops = session.scalar(select(Role.id).where(Role.name == "ops"))
    analyst = session.scalar(select(Role.id).where(Role.name == "analyst"))
    service.assign_role(session, admin, carol, ops, reason="=HYPERLINK(\"http://evil\")")
    frozen_clock.advance(timedelta(hours=1))
    service.grant_override(session, admin, carol, "licenses.revoke", "grant", reason="Fraud case",
                           expires_at=clock.now() + timedelta(days=1))
    service.assign_role(session, admin, tester, analyst, reason="QA run")
    session.flush()
    return carol


def test_role_change_log_screen_and_csv_export(login_as, session, make_user, frozen_clock):
    carol = _change_history(session, make_user, frozen_clock)
    client = login_as("auditor")
    page = client.get("/admin/roles/changes").get_data(as_text=True)
    assert _actions(page) == ["permission_override_granted", "role_assigned"]  # qa.bot is test data
    assert "+ licenses.revoke" in page and 'data-target="carol@example.com"' in page

    rows = _csv(client.get("/admin/roles/changes/export.csv?target=carol&action=role_assigned"))
    assert len(rows) == 1
    row = rows[0]
    assert row["action"] == "role_assigned" and row["target"] == "carol@example.com"
    assert row["changed_by"] == "boss@rephlo.ai" and row["new_role"] == "ops" and row["old_permissions"] == ""
    assert len(row["new_permissions"].split()) == 25
    assert row["reason"].startswith("'=HYPERLINK")  # no formula reaches a spreadsheet
    assert row["is_test"] == "False"

    everything = _csv(client.get("/admin/roles/changes/export.csv?include_test=1"))
    assert [r["target"] for r in everything] == ["qa.bot@example.com", "carol@example.com", "carol@example.com"]
    granted = next(r for r in everything if r["action"] == "permission_override_granted")
    assert '"permission": "licenses.revoke"' in granted["override"]
    assert carol.id


def test_audit_csv_export_has_the_filtered_rows(login_as, audit_rows):
    client = login_as("auditor")
    rows = _csv(client.get("/admin/audit/export.csv?actor=alice&include_test=1"))
    assert [(r["action"], r["target"]) for r in rows] == [("users.suspended", "tester@example.com"),
                                                         ("users.suspended", "bob@rephlo.ai")]
    assert rows[0]["is_test"] == "True" and rows[0]["reason"] == "day 3"
    production = _csv(client.get("/admin/audit/export.csv?actor=alice&include_test=0"))
    assert [r["target"] for r in production] == ["bob@rephlo.ai"]


def test_audit_log_sorts_by_column_and_exports_in_that_order(login_as, audit_rows):
    client = login_as("auditor")
    body = client.get("/admin/audit?sort=action&actor=alice&include_test=1").get_data(as_text=True)
    assert _actions(body) == ["users.suspended", "users.suspended"] and 'aria-sort="ascending"' in body
    by_action = client.get("/admin/audit?sort=action&include_test=0").get_data(as_text=True)
    assert _actions(by_action) == ["auth.logout", "credits.granted", "users.suspended"]
    by_action_desc = client.get("/admin/audit?sort=-action&include_test=0").get_data(as_text=True)
    assert _actions(by_action_desc) == ["users.suspended", "credits.granted", "auth.logout"]
    assert 'name="sort" value="-action"' in by_action_desc  # the filters keep the order
    assert "export.csv?" in by_action_desc and "sort=-action" in by_action_desc
    for bad in ("nonsense", "-", "--created", "reason"):  # an unknown column: the default order, no error
        response = client.get(f"/admin/audit?sort={bad}&include_test=0")
        assert response.status_code == 200
        assert _actions(response.get_data(as_text=True)) == ["auth.logout", "credits.granted", "users.suspended"]
    rows = _csv(client.get("/admin/audit/export.csv?sort=action&include_test=0&date_from=2025-11-02"))
    assert list(rows[0]) == logs.AUDIT_HEADER if rows else False
    assert [r["action"] for r in rows] == ["auth.logout", "credits.granted"]
    assert all(r["created_at"].endswith("+00:00") for r in rows)
    assert [r["action"] for r in _csv(client.get("/admin/audit/export.csv?sort=bogus&include_test=0"))] == [
        "auth.logout", "credits.granted", "users.suspended"]
