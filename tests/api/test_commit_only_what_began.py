"""The pipeline's session transaction (app/core/pg.py SessionTransaction) commits only a session
that began a transaction: a request that touched no database (or read on a connection of its
own) makes no Session.commit(), while anything added to the session is still committed."""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session


def _commits():
    seen = []

    def count(session):
        seen.append(session)

    event.listen(Session, "after_commit", count)
    return seen, lambda: event.remove(Session, "after_commit", count)


def test_a_request_that_began_no_transaction_commits_nothing(app, client):
    seen, stop = _commits()
    try:
        answer = client.get("/api/v1/openapi.json")
    finally:
        stop()
    assert answer.status_code == 200 and answer.json["openapi"].startswith("3.")
    assert seen == []


def test_what_was_added_to_the_session_is_committed(app, session):
    from app.core import pg
    from app.users.models import User

    user = User(email="committed-by-the-pipeline@example.com", first_name="Pipe", account_type="standard")
    session.add(user)
    seen, stop = _commits()
    try:
        pg.SessionTransaction(session).commit()
    finally:
        stop()
    assert len(seen) == 1 and not session().in_transaction()
    assert session.query(User).filter_by(email="committed-by-the-pipeline@example.com").one().id == user.id
