"""A request that waits out SQLite's busy timeout answers 503 with Retry-After (an outage, as
DESIGN.md §5 has it: retrying with the same Idempotency-Key is safe), never a 500."""
from __future__ import annotations

import sqlite3


def test_a_request_that_cannot_get_the_write_lock_answers_503_then_works(tmp_path, monkeypatch):
    import app as app_package
    from app import create_app
    from app.extensions import db

    monkeypatch.setattr(app_package, "SQLITE_BUSY_TIMEOUT_MS", 200)
    # A session of this app's own, not the one the suite binds to its rolled-back transaction.
    monkeypatch.setattr(db, "session", db._make_scoped_session({}))
    path = tmp_path / "busy.db"
    busy_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "JOBS_INLINE": True,
                           "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://", "SECRET_KEY": "busy"})
    with busy_app.app_context():
        from app.api.keys import create_api_key
        from app.users.models import User

        db.create_all()
        owner = User(email="busy@example.com", first_name="B", last_name="Usy")
        db.session.add(owner)
        db.session.flush()
        _, secret = create_api_key(db.session, None, owner=owner, name="busy", key_type="sandbox")
        db.session.commit()
        db.session.remove()
    headers = {"Authorization": f"Bearer {secret}"}
    holder = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
    holder.execute("BEGIN IMMEDIATE")
    try:
        with busy_app.test_client() as client:
            busy = client.post("/api/v1/credits/deduct", json={"amount": 1, "deduction_type": "inference"},
                               headers={**headers, "Idempotency-Key": "busy-1"})
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"  # core/outage.py
            assert busy.get_json()["error"]["code"] == "service_unavailable"
    finally:
        holder.rollback()
        holder.close()
    with busy_app.test_client() as client:
        again = client.post("/api/v1/credits/deduct", json={"amount": 1, "deduction_type": "inference"},
                            headers={**headers, "Idempotency-Key": "busy-1"})
        assert again.status_code == 402  # the lock is free: the retry gets the real answer (no credits)
    with busy_app.app_context():
        db.session.remove()
        db.engine.dispose()
