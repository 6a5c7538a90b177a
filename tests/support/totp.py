"""TOTP codes for tests: never hand out the same time step twice (the app refuses replays)."""
from __future__ import annotations

import time

import pyotp

_last_step: dict[str, int] = {}


def fresh_code(secret: str) -> str:
    """A code for the next unused step within the accepted window, waiting if needed."""
    while True:
        current = int(time.time()) // 30
        step = max(current - 1, _last_step.get(secret, -1) + 1)
        if step <= current + 1:
            _last_step[secret] = step
            return pyotp.TOTP(secret).at(step * 30)
        time.sleep(max(0.2, (current + 1) * 30 - time.time() + 0.1))
