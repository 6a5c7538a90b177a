"""TOTP codes for tests: never hand out the same time step twice (the app refuses replays)."""
from __future__ import annotations

import time

import pyotp

_last_step: dict[tuple[str, str], int] = {}


def fresh_code(secret: str, scope: str = "") -> str:
    """A code for the next unused step within the accepted window, waiting if needed.

    The app remembers the last step per user in its database: `scope` names that database (the
    browser tests pass their server's base URL), so servers on their own databases never wait
    for each other's codes."""
    while True:
        current = int(time.time()) // 30
        # Never the previous step: its code expires at the next boundary, maybe before the request lands.
        step = max(current, _last_step.get((scope, secret), -1) + 1)
        if step <= current + 1:
            _last_step[(scope, secret)] = step
            return pyotp.TOTP(secret).at(step * 30)
        time.sleep(max(0.2, (current + 1) * 30 - time.time() + 0.1))
