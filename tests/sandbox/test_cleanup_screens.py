"""The Test data screen: metrics, the include-test toggle, and the two cleanups with their progress."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.jobs import JobRecord
from app.sandbox.cleanup_models import CleanupRun
from app.sandbox import cleanup, cleanup_labels
from tests.sandbox.cleanup_factories import count, insert_owned_rows, insert_users, remaining_test_rows


@pytest.fixture
def data(session, frozen_clock):
    insert_users(session, 6, test=False)
    expired = insert_users(session, 2, test=True, expires_in=timedelta(days=-1))
    insert_owned_rows(session, expired, is_test=True)
    insert_users(session, 1, test=True, expires_in=timedelta(days=1))
    session.commit()
    return expired


def test_the_screen_needs_users_view_and_is_in_the_navigation(login_as, data):
    assert login_as("auditor").get("/admin/test-data").status_code == 403
    client = login_as("support")
    page = client.get("/admin/test-data").get_data(as_text=True)
    assert 'href="/admin/test-data"' in page  # the navigation entry
    assert "Delete all test data" not in page  # needs users.delete
    assert "Delete expired test accounts now" not in page  # needs users.delete


def test_the_screen_shows_the_success_metrics(login_as, data, session, frozen_clock):
    session.add(CleanupRun(kind="expired", trigger="schedule", status="finished", deleted={"users": 3, "recovery_codes": 4},
                           started_at=frozen_clock.now() - timedelta(seconds=90), finished_at=frozen_clock.now()))
    session.commit()
    client = login_as("admin")  # +1 production staff user: 7 production, 3 test of 10
    page = client.get("/admin/test-data").get_data(as_text=True)
    assert "3 <small>of 10 users</small>" in page and "30.00% of all users" in page and "above the 1.0% target" in page
    assert 'id="metric-expired"' in page and '<p class="figure">2</p>' in page
    assert "7 <small>rows deleted</small>" in page and "90.0 s" in page and "<code>recovery_codes</code>" in page
    assert "API requests today" in page
    assert "production only" in page and "<td>7</td>" in page


def test_including_test_data_changes_the_figures_and_shows_the_banner(login_as, data):
    client = login_as("admin")
    page = client.get("/admin/test-data?include_test=1").get_data(as_text=True)
    assert "Viewing test data" in page and "(production and test)" in page and "<td>10</td>" in page
    page = client.get("/admin/test-data").get_data(as_text=True)  # the choice sticks for the session
    assert "Viewing test data" in page
    page = client.get("/admin/test-data?include_test=0").get_data(as_text=True)
    assert "Viewing test data" not in page and "<td>7</td>" in page


def test_the_api_request_figure_counts_todays_requests(login_as, data, session):
    from app.api.traffic import record_request

    for is_test in [True] * 5 + [False] * 15:
        record_request(session, is_test)
    session.commit()
    page = login_as("admin").get("/admin/test-data").get_data(as_text=True)
    assert "API requests today" in page and "25.0% of today's 20 requests" in page


def test_staff_can_run_the_nightly_cleanup_now(login_as, data, session):
    assert login_as("support").post("/admin/test-data/cleanup").status_code == 403
    client = login_as("admin")
    response = client.post("/admin/test-data/cleanup")
    assert response.status_code == 302 and "/admin/test-data/jobs/" in response.location
    assert count(session, "users", id=data) == 0
    page = client.get(response.location).get_data(as_text=True)
    assert 'value="100"' in page and 'id="cleanup-summary"' in page and "<td>Test accounts (customers and twins)</td><td>2</td>" in page
    run = session.scalars(select(CleanupRun)).one()
    assert run.trigger == "staff" and run.actor_id == client.user.id
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == client.user.id)
                              .order_by(AuditEntry.id)).all()
    assert actions == ["testdata.cleanup_requested", "testdata.cleanup_expired"]


def test_delete_all_needs_users_delete_in_sudo_mode_and_shows_what_it_will_delete(login_as, sudo, data, session):
    assert sudo(login_as("support")).get("/admin/test-data/delete-all").status_code == 403
    boss = login_as("admin")  # users.delete, not a super admin (issue 14)
    response = boss.get("/admin/test-data/delete-all")
    assert response.status_code == 302 and "/auth/sudo" in response.location
    sudo(boss)
    preview = cleanup.delete_all_preview(session, actor=boss.user)
    page = boss.get("/admin/test-data/delete-all").get_data(as_text=True)
    assert 'id="delete-all-preview-counts"' in page and preview["users"] == 3
    assert '<tr data-table="users"><td>Test accounts (customers and twins)</td><td>3</td></tr>' in page
    response = boss.post("/admin/test-data/delete-all", data={"reason": "spring clean"})
    assert response.status_code == 422 and "Tick the box" in response.get_data(as_text=True)
    assert remaining_test_rows(session)["users"] == 3  # nothing happened

    response = boss.post("/admin/test-data/delete-all", data={"confirm": "y", "reason": "spring clean"})
    assert response.status_code == 302
    assert "users" not in remaining_test_rows(session)
    page = boss.get(response.location).get_data(as_text=True)
    summary = page[page.index('id="cleanup-summary-counts"'):]
    assert all(f'<tr data-table="{t}"><td>{cleanup_labels.label(t)}</td><td>{n:,}</td>' in summary
               for t, n in preview.items())  # the same counts as the preview
    main = page.split("<main", 1)[1]  # the top bar's search has triggers of its own
    assert 'value="100"' in main and "hx-trigger" not in main and 'id="cleanup-summary"' in main
    requested = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.delete_all_requested")).one()
    assert requested.reason == "spring clean" and requested.actor_id == boss.user.id


def test_the_progress_fragment_polls_while_the_job_runs(login_as, session):
    job = JobRecord(id=str(uuid.uuid4()), kind="testdata.delete_all", status="running", progress=40,
                    message="deleting test rows from audit_log")
    session.add(job)
    session.commit()
    client = login_as("admin")
    fragment = client.get(f"/admin/test-data/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith("<section") and "<html" not in fragment
    assert 'hx-trigger="every 1s"' in fragment and '<progress id="cleanup-progress-bar" value="40"' in fragment
    page = client.get(f"/admin/test-data/jobs/{job.id}").get_data(as_text=True)
    assert "<html" in page and 'hx-trigger="every 1s"' in page
    # Another cleanup cannot start meanwhile.
    response = client.post("/admin/test-data/cleanup")
    assert response.status_code == 409 and "already running" in response.get_data(as_text=True)


def test_a_failed_job_shows_its_error_and_unknown_jobs_are_404(login_as, session):
    job = JobRecord(id=str(uuid.uuid4()), kind="testdata.cleanup_expired", status="failed", progress=30,
                    error="Conflict: Another test-data cleanup is running")
    other = JobRecord(id=str(uuid.uuid4()), kind="billing.renew", status="finished")
    session.add_all([job, other])
    client = login_as("admin")
    session.commit()  # a 404 rolls the request's session back: keep the signed-in user
    page = client.get(f"/admin/test-data/jobs/{job.id}").get_data(as_text=True)
    assert 'id="cleanup-error"' in page and "Another test-data cleanup is running" in page
    assert client.get(f"/admin/test-data/jobs/{other.id}").status_code == 404
    assert client.get("/admin/test-data/jobs/nope").status_code == 404


def test_the_sudo_prompt_returns_to_the_delete_all_page(login_as, session):
    import pyotp

    client = login_as("super_admin")
    session.commit()
    response = client.get("/admin/test-data/delete-all")
    assert response.status_code == 302
    prompt = response.location
    code = pyotp.TOTP(client.user.totp_secret).now()
    next_path = prompt.split("next=", 1)[1]
    from urllib.parse import unquote

    response = client.post("/auth/sudo", data={"code": code, "next": unquote(next_path)})
    assert response.status_code == 302 and response.location.startswith("/admin/test-data/delete-all")
    assert client.get(response.location).status_code == 200
    # A POST refused for want of sudo returns to the page its form was on, as a path.
    other = login_as("super_admin")
    response = other.post("/admin/test-data/delete-all", data={"confirm": "y"},
                          headers={"Referer": "http://admin.test/admin/test-data/delete-all"})
    assert "next=/admin/test-data/delete-all" in unquote(response.location)
