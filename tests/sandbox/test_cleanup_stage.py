"""The staged batch: flat statements whatever the depth of the graph, the real seeded graph
cleaned on both databases, and the graph's refusal of owners it cannot stage."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Column, ForeignKey, Integer, String, Table, event, select, update

from app.core import clock
from app.extensions import db
from app.sandbox import cleanup
from app.sandbox.cleanup_graph import Graph
from tests.sandbox.cleanup_factories import (assert_production_unchanged, insert_owned_rows, insert_users,
                                              production_snapshot, remaining_test_rows, table)


def _subquery_depth(statement: str) -> int:
    """How many SELECTs deep the statement nests (parenthesised SELECTs inside each other)."""
    stack, deepest, i = [], 0, 0
    while i < len(statement):
        char = statement[i]
        if char == "(":
            stack.append(statement[i + 1:i + 20].lstrip().upper().startswith("SELECT"))
            deepest = max(deepest, sum(stack))
        elif char == ")" and stack:
            stack.pop()
        i += 1
    return deepest


@pytest.fixture
def seeded(app, session):
    assert app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    users = table("users")
    session.execute(update(users).where(users.c.is_test.is_(True))
                    .values(test_expires_at=clock.now() - timedelta(hours=1)))
    production = insert_users(session, 3, test=False)
    insert_owned_rows(session, production, is_test=False)
    session.commit()


def test_the_seeded_graph_is_cleaned_with_flat_statements(session, seeded):
    """Every seeder's test data (subscriptions, invoices and their lines, payments, dunning,
    licenses and activations, coupons, credits) goes; no statement nests more than 2 deep."""
    before = production_snapshot(session, ignore_links_to_test_users=True)
    statements = []

    def capture(conn, cursor, statement, params, context, executemany):
        statements.append(statement)

    engine = db.engine.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        run = cleanup.cleanup_expired(session, batch_size=4)
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    for name in ("users", "subscriptions", "invoices", "invoice_lines", "payment_transactions", "dunning_attempts",
                 "licenses", "license_activations", "coupon_redemptions", "credit_balances"):
        assert run.deleted.get(name, 0) > 0, name
    assert run.status == "finished" and run.kept == 0
    users = table("users")
    assert session.scalars(select(users.c.email).where(users.c.is_test.is_(True), users.c.is_staff.is_(False))).all() == []
    assert max(_subquery_depth(s) for s in statements) <= 2
    assert_production_unchanged(before, production_snapshot(session, ignore_links_to_test_users=True),
                                audit_log=1)

    again = cleanup.delete_all_test_data(session, batch_size=7)
    left = remaining_test_rows(session)  # the staff personas and what they own stay
    staff = session.scalars(select(users.c.id).where(users.c.is_test.is_(True), users.c.is_staff.is_(True))).all()
    assert left.pop("users") == len(staff) and again.kept == 0
    assert set(left) <= {"role_assignments", "permission_overrides", "credit_balances", "credit_allocations"}


def test_depth_is_measured_on_nested_selects():
    assert _subquery_depth("DELETE FROM t WHERE id IN (SELECT id FROM s WHERE x IN (SELECT y FROM u))") == 2
    assert _subquery_depth("UPDATE s SET a = (1) WHERE b IN (2, 3)") == 0


def test_an_owner_without_a_single_integer_key_is_refused():
    metadata = db.metadata
    owner = Table("zz_owner", metadata, Column("code", String(10), primary_key=True))
    owned = Table("zz_owned", metadata, Column("id", Integer, primary_key=True),
                  Column("owner_code", ForeignKey("zz_owner.code", ondelete="CASCADE")))
    try:
        with pytest.raises(RuntimeError, match="single integer primary key"):
            Graph(metadata)
    finally:
        metadata.remove(owned)
        metadata.remove(owner)
    Graph(metadata)  # and the app's own graph is fine
