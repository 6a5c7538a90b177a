"""The invariance proof: over 10,000 production rows mixed with test rows in seven tables,
every production row is byte-for-byte the same after the nightly cleanup and after
'delete all test data'."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.sandbox import cleanup
from tests.sandbox.cleanup_factories import (assert_production_unchanged, insert_owned_rows, insert_users,
                                              production_snapshot, remaining_test_rows, table)


def test_ten_thousand_production_rows_survive_every_cleanup_untouched(session, frozen_clock):
    production, expired, current = [], [], []
    for chunk in range(10):  # interleave ids: production and test rows side by side
        ids = insert_users(session, 200, test=False, staff=lambda n: n % 7 == 0, status=lambda n: "active")
        insert_owned_rows(session, ids, is_test=False, actor_id=ids[0])
        production += ids
        ids = insert_users(session, 30, test=True, expires_in=timedelta(hours=-chunk - 1))
        insert_owned_rows(session, ids, is_test=True, per_user=2, actor_id=ids[0])
        expired += ids
        ids = insert_users(session, 20, test=True, expires_in=timedelta(days=chunk + 1))
        insert_owned_rows(session, ids, is_test=True, per_user=2)
        current += ids
    session.commit()
    before = production_snapshot(session)
    assert sum(len(rows) for name, rows in before.items()
               if name not in ("roles", "permissions", "role_permissions")) >= 10_000

    run = cleanup.cleanup_expired(session, batch_size=47)
    users = table("users")
    left = set(session.scalars(select(users.c.id)))
    assert not left & set(expired) and set(current) <= left and set(production) <= left
    assert run.deleted["users"] == 300 and run.batches == 7
    assert_production_unchanged(before, production_snapshot(session), audit_log=1)

    run = cleanup.delete_all_test_data(session, batch_size=333)
    assert remaining_test_rows(session) == {}
    assert run.deleted["users"] == 200
    assert_production_unchanged(before, production_snapshot(session), audit_log=2)
