"""A keyless validation outside any transaction reads the license on a pooled psycopg connection
in autocommit, without a SQLAlchemy Connection (app/core/pg.py read_alone): it must
answer exactly what the session's own read answers, and leave the connection as it found it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.licensing.conftest import fp

pytestmark = pytest.mark.postgres


def test_the_lone_read_answers_as_the_sessions_read(real_db, session, versions, make_license, monkeypatch):
    from app.core import pg
    from app.licensing import activations, validation

    expires = datetime.now(timezone(timedelta(hours=5))).replace(microsecond=0) + timedelta(days=30)
    lic = make_license(max_activations=2, expires_at=expires)
    device = fp("lone-read")
    activations.activate(session, lic, device, {"device_name": "desk"}, source="client")
    key, pool = lic.license_key, real_db.engine.pool
    session.commit()

    lone_reads = []
    read_alone = pg.read_alone
    monkeypatch.setattr(pg, "read_alone", lambda *a: lone_reads.append(a) or read_alone(*a))
    assert not session().in_transaction()
    checked_out = pool.checkedout()
    alone = validation._lookup(session, key, device)
    other = validation._lookup(session, key, fp("another device"))
    missing = validation._lookup(session, "PERM-AAAA-BBBB-CCCC-DDDD", device)
    assert len(lone_reads) == 3 and pool.checkedout() == checked_out  # each connection went back

    session.begin()  # now through the session's transaction, as SQLAlchemy reads it
    assert validation._lookup(session, key, device) == alone
    assert validation._lookup(session, key, fp("another device")) == other
    session.rollback()
    assert len(lone_reads) == 3

    assert alone.fingerprint_active and not other.fingerprint_active and missing is None
    assert alone.active_count == 1 and alone.max_activations == 2 and alone.status == "active"
    assert alone.expires_at == expires.astimezone(timezone.utc).isoformat()  # UTC, as the cache and API give it
    with real_db.engine.connect() as conn:  # a connection from the pool is back in transaction mode
        assert conn.connection.driver_connection.autocommit is False
