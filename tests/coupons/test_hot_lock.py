"""A live redemption on PostgreSQL holds the hot coupon's row lock for as few round trips as
possible: from the statement that takes the coupon's use (coupons/hot.py) to the commit, the
request sends only the Idempotency-Key answer's store (no re-read of the row it just wrote)."""
from __future__ import annotations

import contextlib

import psycopg
import pytest

from tests.coupons.test_api import BODY, black_friday, live, post  # noqa: F401 (fixtures)

pytestmark = pytest.mark.postgres


@contextlib.contextmanager
def statements():
    """Every statement sent through psycopg meanwhile (text, whitespace folded)."""
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def recorded(self, query, params=None, **kwargs):
        text = query if isinstance(query, str) else query.as_string(self.connection)
        sent.append(" ".join(text.split()))
        return execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = recorded
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = execute


def test_only_the_answers_store_is_sent_while_the_coupon_row_is_locked(client, live, black_friday):
    with statements() as sent:
        response = post(client, "redeem", live, BODY, idem="lock-1")
    assert response.status_code == 201 and response.json["redemption"]["redemption_status"] == "success"
    takes = [i for i, text in enumerate(sent) if text.startswith("WITH taken AS (UPDATE coupons")]
    assert len(takes) == 1, sent
    ends = [i for i, text in enumerate(sent) if i > takes[0] and text.startswith(("RELEASE SAVEPOINT", "COMMIT"))]
    assert ends, sent  # the tests' outer transaction: the request's commit releases its savepoint
    locked = sent[takes[0] + 1:ends[0]]
    assert len(locked) == 1 and locked[0].startswith("UPDATE idempotency_records"), locked
