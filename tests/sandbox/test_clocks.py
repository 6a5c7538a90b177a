"""Test clocks: a test account's own time, advanced by staff, with hooks for the domains."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.errors import Conflict, DomainError
from app.sandbox import cleanup, clocks as test_clocks
from app.sandbox.clock_models import TestClock
from app.users.models import User
from tests.sandbox.cleanup_factories import insert_users, table


@pytest.fixture
def accounts(session, frozen_clock):
    """Inserted without passwords: hashing one costs about a second here."""
    users = table("users")
    [test] = insert_users(session, 1, test=True, expires_in=timedelta(days=7))
    [real, staff] = insert_users(session, 2, test=False)
    session.execute(users.update().where(users.c.id == test).values(email="qa.clock@example.test"))
    session.execute(users.update().where(users.c.id == real).values(email="real.customer@example.com"))
    return {name: session.get(User, uid) for name, uid in (("test", test), ("real", real), ("staff", staff))}


@pytest.fixture
def hook():
    calls = []

    @test_clocks.on_advance("tests.renewals")
    def renew(session, user_id, old, new):
        calls.append((user_id, old, new))
        return {"renewed": 1}

    yield calls
    test_clocks.remove_hook("tests.renewals")


def test_an_account_on_a_clock_lives_on_its_time_and_others_do_not(session, accounts, frozen_clock, hook):
    staff, test = accounts["staff"], accounts["test"]
    test_clock = test_clocks.create_clock(session, " QA.Clock@example.test ", actor=staff)
    start = frozen_clock.now()
    assert test_clocks.now_for(session, test.id) == start
    results = test_clocks.advance(session, test_clock, by=timedelta(days=31), actor=staff)
    assert results == {"tests.renewals": {"renewed": 1}}
    assert hook == [(test.id, start, start + timedelta(days=31))]
    assert test_clocks.now_for(session, test.id) == start + timedelta(days=31)
    assert test_clocks.now_for(session, accounts["real"].id) == frozen_clock.now()
    assert test_clock.offset_text == "31 days 0 h ahead"
    frozen_clock.advance(timedelta(days=40))
    assert test_clock.offset_text == "9 days 0 h behind"  # it stands still until advanced
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like("testdata.clock_%"))
                              .order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["testdata.clock_created", "testdata.clock_advanced"]
    assert entries[1].before == {"frozen_time": start.isoformat()}
    assert entries[1].after["hooks"] == {"tests.renewals": {"renewed": 1}} and all(e.is_test for e in entries)


@pytest.mark.parametrize("email, code", [("real.customer@example.com", "not_a_test_account"),
                                         ("nobody@example.com", "user_not_found")])
def test_only_test_accounts_get_a_clock(session, accounts, email, code):
    with pytest.raises(DomainError) as error:
        test_clocks.create_clock(session, email, actor=accounts["staff"])
    assert error.value.code == code and error.value.field == "email"


def test_a_clock_moves_forward_only_and_not_too_far(session, accounts, hook):
    test_clock = test_clocks.create_clock(session, "qa.clock@example.test", actor=accounts["staff"])
    with pytest.raises(Conflict):
        test_clocks.create_clock(session, "qa.clock@example.test", actor=accounts["staff"])
    start = test_clock.frozen_time
    for by, code in ((timedelta(0), "clock_backwards"), (timedelta(hours=-1), "clock_backwards"),
                     (timedelta(days=401), "advance_too_far")):
        with pytest.raises(DomainError) as error:
            test_clocks.advance(session, test_clock, by=by, actor=accounts["staff"])
        assert error.value.code == code
    assert test_clock.frozen_time == start and hook == []


def test_clocks_go_with_their_test_account(session, accounts, frozen_clock):
    test_clocks.create_clock(session, "qa.clock@example.test", actor=accounts["staff"])
    session.commit()
    frozen_clock.advance(timedelta(days=8))
    run = cleanup.cleanup_expired(session)
    assert run.deleted["test_clocks"] == 1 and session.scalars(select(TestClock)).all() == []


def test_the_clocks_screen(login_as, session, accounts, hook):
    assert login_as("auditor").get("/admin/test-data/clocks").status_code == 403
    viewer = login_as("support")
    assert "Put a test account on a test clock" not in viewer.get("/admin/test-data/clocks").get_data(as_text=True)
    assert viewer.post("/admin/test-data/clocks", data={"email": "qa.clock@example.test"}).status_code == 403

    client = login_as("admin")
    session.commit()
    response = client.post("/admin/test-data/clocks", data={"email": "real.customer@example.com"})
    assert response.status_code == 422 and "Test clocks are for test accounts only." in response.get_data(as_text=True)
    assert client.post("/admin/test-data/clocks", data={"email": "qa.clock@example.test"}).status_code == 302
    test_clock = session.scalars(select(TestClock)).one()

    response = client.post(f"/admin/test-data/clocks/{test_clock.id}/advance", data={"days": "0", "hours": "0"})
    assert response.status_code == 422 and "only moves forward" in response.get_data(as_text=True)
    response = client.post(f"/admin/test-data/clocks/{test_clock.id}/advance", data={"days": "500", "hours": "0"})
    assert response.status_code == 422 and hook == []
    response = client.post(f"/admin/test-data/clocks/{test_clock.id}/advance", data={"days": "30", "hours": "2"})
    assert response.status_code == 302 and len(hook) == 1
    page = client.get("/admin/test-data/clocks").get_data(as_text=True)
    assert "30 days 2 h ahead" in page and "tests.renewals ran" in page

    assert client.post(f"/admin/test-data/clocks/{test_clock.id}/delete").status_code == 302
    assert session.scalars(select(TestClock)).all() == []
    assert client.post(f"/admin/test-data/clocks/{test_clock.id}/advance", data={"days": "1", "hours": "0"}).status_code == 404
