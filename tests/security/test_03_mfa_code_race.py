"""Issue 15 item 3: one TOTP code or recovery code is accepted once, even when raced.

Six sessions posting one code at once were all accepted (read, then write: every request saw
the code unused). Acceptance is now one conditional UPDATE; exactly one request wins.
Real commits on PostgreSQL, one thread per session.
"""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pyotp
import pytest

from app.core import clock

pytestmark = pytest.mark.postgres
RACERS = 6


@pytest.fixture
def staff_member(app, real_db, frozen_clock, monkeypatch):
    """A committed staff user with TOTP and recovery codes: (user id, TOTP secret, cookie id, recovery codes).

    The losers' wrong codes must not trip the throttle or lockout of item 2: this is about the race."""
    from app.auth.service import new_recovery_codes
    from app.extensions import limiter
    from app.users.models import User

    for key in ("MFA_LIMIT_PER_ACCOUNT", "MFA_LIMIT_PER_IP"):
        monkeypatch.setitem(app.config, key, "1000 per minute")
    monkeypatch.setitem(app.config, "MFA_LOCKOUT_FAILURES", 1000)
    limiter.reset()

    user = User(email=f"race-{uuid.uuid4().hex[:8]}@example.com", is_staff=True, totp_enabled=True,
                totp_secret=pyotp.random_base32())
    real_db.session.add(user)
    real_db.session.flush()
    codes = new_recovery_codes(real_db.session, user)
    real_db.session.commit()
    return user.id, user.totp_secret, user.get_id(), codes


def _password_done(app, user_key: str):
    """A client past the password step (MFA pending), without paying argon2 six times."""
    from app.auth.guards import SESSION_SEEN, SESSION_STARTED

    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"], sess["_fresh"] = user_key, True
        sess[SESSION_STARTED] = sess[SESSION_SEEN] = clock.now().timestamp()
    return client


def _race(app, user_key: str, code: str) -> list[int]:
    clients = [_password_done(app, user_key) for _ in range(RACERS)]
    barrier, statuses, lock = threading.Barrier(RACERS), [], threading.Lock()

    def post(client):
        barrier.wait(10)
        status = client.post("/auth/verify", data={"code": code}).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(statuses)


def test_a_raced_totp_code_wins_once(app, staff_member, frozen_clock):
    _, secret, user_key, _ = staff_member
    for _ in range(3):  # three rounds: the old read-then-write lost at least one of them
        frozen_clock.advance(timedelta(seconds=30))
        code = pyotp.TOTP(secret).at(clock.now())
        assert _race(app, user_key, code) == [302] + [401] * (RACERS - 1)


def test_a_raced_recovery_code_is_used_once(app, real_db, staff_member):
    from sqlalchemy import func, select

    from app.auth.models import RecoveryCode

    user_id, _, user_key, codes = staff_member
    for code in codes[:3]:
        assert _race(app, user_key, code) == [302] + [401] * (RACERS - 1)
    used = real_db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_not(None)))
    assert used == 3
