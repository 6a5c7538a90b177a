"""pg.run's rows: attribute access as psycopg's namedtuple_row gives it, the row class found once
per statement (app/core/pg.py rows_for) and never one result's class for another statement."""
from __future__ import annotations

import pytest
from psycopg.rows import namedtuple_row
from sqlalchemy import bindparam, literal, select, text, update

from app.core import pg
from app.users.models import User

pytestmark = pytest.mark.postgres

BY_ID = select(User.id, User.email, (User.id + 1).label("next id")).where(User.id == bindparam("id"))
NAMES = text("SELECT 1 AS one, 'x' AS \"two words\"")
TOUCH = update(User).where(User.id == bindparam("id")).values(updated_at=User.updated_at)
CONSTANT = select(literal(5).label("five"))


def test_rows_read_as_namedtuple_row_reads_them_and_the_class_is_found_once(session, make_user):
    first, second = make_user(), make_user()
    assert pg.run(session, BY_ID, {"id": 0}).fetchone() is None  # no row yet: nothing kept wrong
    factory = pg.rows_for(BY_ID)
    rows = [pg.run(session, BY_ID, {"id": user.id}).fetchone() for user in (first, second)]
    assert [(r.id, r.email, r[2]) for r in rows] == [(u.id, u.email, u.id + 1) for u in (first, second)]
    assert type(rows[0]) is type(rows[1]) and factory.make is not None
    raw = pg.driver(session)
    sql, defaults = pg._compiled(BY_ID)
    reference = raw.cursor(row_factory=namedtuple_row).execute(sql, {**defaults, "id": first.id}).fetchone()
    assert rows[0]._fields == reference._fields and tuple(rows[0]) == tuple(reference)

    assert pg.run(session, NAMES, {}).fetchone()._fields == ("one", "two_words")
    pg.run(session, TOUCH, {"id": first.id})  # no result rows: the next statement's class is its own
    assert pg.run(session, CONSTANT, {}).fetchone().five == 5
    assert pg.rows_for(TOUCH).make is None and pg.rows_for(CONSTANT) is not pg.rows_for(BY_ID)
