"""Queue health and the Jobs screen against a real Redis and a real RQ worker."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from app.core.jobs import JobRecord, enqueue
from app.ops import queues
from tests.support.workers import start_worker

pytestmark = pytest.mark.redis


def _wait(predicate, timeout=30.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_health_redis_reports_queues_and_cron(client, redis_app):
    body = client.get("/api/v1/health/redis").get_json()
    assert body["status"] == "healthy" and body["redis"] == "connected"
    assert set(body["queues"]) == {"high", "default", "low"}
    assert body["total"] == {"pending": 0, "processing": 0, "dead_letter": 0}
    assert {c["name"] for c in body["cron"]} >= {"expire-rbac", "deliver-outbox"}


def test_health_redis_inline_default(client):
    body = client.get("/api/v1/health/redis").get_json()
    assert body["redis"] == "not_configured" and body["jobs"] == "inline"


@pytest.fixture
def redis_stopped(app):
    """The app configured for a Redis that does not answer (nothing listens on port 1)."""
    app.config.update(REDIS_URL="redis://127.0.0.1:1/0", JOBS_INLINE=False)
    app.extensions.pop("rephlo_redis", None)
    yield
    app.config.update(REDIS_URL=None, JOBS_INLINE=True)
    app.extensions.pop("rephlo_redis", None)


def test_health_redis_down_is_503_with_reason(client, redis_stopped):
    response = client.get("/api/v1/health/redis")
    assert response.status_code == 503 and "unreachable" in response.get_json()["reason"]
    health = client.get("/api/v1/health")
    assert health.status_code == 503 and health.get_json()["redis"] != "ok"


def test_jobs_screen_says_plainly_that_redis_is_down(login_as, redis_stopped):
    page = login_as("admin").get("/admin/jobs")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Redis is unreachable (ConnectionError): jobs cannot be queued or run." in body
    assert "No Redis is configured" not in body and "expire-rbac" in body  # the schedule still shows


def test_failed_job_lands_in_failed_registry_and_can_be_retried(app, redis_app, real_db, database_url, login_as,
                                                                 make_user):
    app.config["JOB_RETRY_MAX"] = 0
    try:
        with app.test_request_context():
            record = enqueue("boom", "tests.ops.sample_jobs:boom")
            record_id = record.id
        worker = start_worker(database_url, burst=True)
        try:
            output, _ = worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
            raise AssertionError(f"the burst worker did not finish in 60 s:\n{output}") from None
        assert worker.returncode == 0, output
        with app.test_request_context():
            real_db.session.expire_all()
            failed = real_db.session.get(JobRecord, record_id)
            assert failed.status == "failed" and "boom for the jobs screen" in failed.error
            health = app.test_client().get("/api/v1/health/redis").get_json()
            assert health["total"]["dead_letter"] == 1
            [dead] = queues.failed_jobs(redis_app)  # kept in RQ's failed registry with its error
            assert dead["id"] == record_id and dead["error"] == "RuntimeError: boom for the jobs screen"
            admin = make_user(roles=("admin",))
            real_db.session.commit()
        client = login_as(user=admin)
        page = client.get("/admin/jobs")
        assert b"boom for the jobs screen" in page.data
        assert client.post(f"/admin/jobs/{record_id}/retry").status_code == 302
        assert app.test_client().get("/api/v1/health/redis").get_json()["total"] == {
            "pending": 1, "processing": 0, "dead_letter": 0}
        assert client.post(f"/admin/jobs/{record_id}/delete").status_code == 404  # no longer failed
    finally:
        app.config["JOB_RETRY_MAX"] = 3


def test_work_horse_killed_mid_run_is_retried(app, redis_app, real_db, database_url):
    with app.test_request_context():
        record_id = enqueue("slow-once", "tests.ops.sample_jobs:slow_once", "kill-test").id
    worker = start_worker(database_url)
    try:
        assert _wait(lambda: redis_app.get("kill-test:pid") is not None), "the job never started"
        os.kill(int(redis_app.get("kill-test:pid")), signal.SIGKILL)

        def finished():
            with app.test_request_context():
                real_db.session.expire_all()
                return real_db.session.get(JobRecord, record_id).status == "finished"

        assert _wait(finished, timeout=45), "the killed job was not retried to completion"
        assert int(redis_app.get("kill-test")) == 2  # ran twice: killed once, then completed
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


def test_jobs_screen_permissions(login_as):
    assert login_as("ops").get("/admin/jobs").status_code == 403
    page = login_as("auditor").get("/admin/jobs")
    assert page.status_code == 200 and b"No Redis is configured" in page.data
    assert b"expire-rbac" in page.data
