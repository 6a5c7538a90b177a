"""A key's rate limit in Redis without a round trip per request.

Each process reserves hits of the key's fixed window in blocks: one Lua call adds the block
to the window's counter (the key and expiry the limits library's Redis storage uses, so
Flask-Limiter's storage and this agree), and the process grants requests from its block
until it is used up or the window ends. Once Redis says the window is full, further requests
in it are refused here without asking again.

The block is 1 hit for limits under 100 a window (every request reaches Redis, exact) and 1%
of the limit above that. A block one process holds unused is not available to another, so
with P processes a key can be refused at most (P - 1)% of its limit early; never late.

While Redis is unreachable a process keeps serving within its last known allowance: the hits
of the window that Redis last reported plus what this process granted since, up to the limit
(a window it knows nothing of gets the whole limit, of its own). A key that was refused stays
refused till its window ends; one that had room keeps it. The cost is a bounded overshoot
(each of P processes may grant the remainder: at most P times the limit a window during the
outage) rather than refusing every metered request for as long as Redis is away: the limit
guards against abuse, while the money (balances, ledgers) is in PostgreSQL and unaffected.
After a failure Redis is asked again after OFFLINE_RETRY_SECONDS, not on every request.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem
from limits.storage import RedisStorage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Add ARGV[1] hits to the window KEYS[1], expiring ARGV[2] s after its first hit: {hits, ttl}.
_RESERVE_LUA = """
local hits = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {hits, ttl}
"""
MAX_WINDOWS = 50_000  # past this, windows that ended are forgotten (all, when most are live)
OFFLINE_RETRY_SECONDS = 1.0


@dataclass
class _Block:
    before: int  # the window's hits before this block was reserved
    granted: int  # hits of the block this process may hand out
    taken: int  # hits handed out
    reset: float  # when the window ends (epoch seconds)
    full: bool  # the window has no hits left for anyone


class _Windows:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks: dict[str, _Block] = {}
        self.script = None
        self.offline_until = 0.0  # Redis failed: serve from the last known allowance till then


_windows = _Windows()


def _forget_after_fork() -> None:
    """A forked worker holds no blocks (told by the fork itself: os.getpid() per request was a
    system call on every metered request)."""
    global _windows
    _windows = _Windows()


os.register_at_fork(after_in_child=_forget_after_fork)


def _here() -> _Windows:
    return _windows


@lru_cache(maxsize=4096)
def _window_key(item: RateLimitItem, scope: str, *identifiers: str) -> str:
    """The Redis key of the window (the limits library's storage key): built once per key or
    address, not per request (~8,000 instructions: a join of five escaped parts)."""
    return f"{RedisStorage.PREFIX}:{item.key_for(scope, *identifiers)}"


def block_size(limit: int) -> int:
    return 1 if limit < 100 else limit // 100


def _grant(block: _Block, limit: int) -> tuple[bool, int, float]:
    block.taken += 1
    return True, max(0, limit - block.before - block.taken), block.reset


def hit(redis, item: RateLimitItem, *identifiers: str, scope: str = "api") -> tuple[bool, int, float]:
    """One request against the window of `identifiers` (a key's rate key; a route's per-address
    limit uses scope "ip" with the endpoint and the address): (allowed, remaining, reset time)."""
    windows, now = _here(), time.time()
    window = _window_key(item, scope, *identifiers)
    with windows.lock:
        block = windows.blocks.get(window)
        if block is not None and block.reset > now:
            if block.taken < block.granted:
                return _grant(block, item.amount)
            if block.full:
                return False, 0, block.reset
    if now < windows.offline_until:
        return _offline(windows, window, item, now)
    script = windows.script
    if script is None or script.registered_client is not redis:
        script = windows.script = redis.register_script(_RESERVE_LUA)
    size = block_size(item.amount)
    try:
        hits, ttl = (int(v) for v in script(keys=[window], args=[size, item.get_expiry()]))
    except (RedisConnectionError, RedisTimeoutError):
        windows.offline_until = time.time() + OFFLINE_RETRY_SECONDS
        return _offline(windows, window, item, now)
    before = hits - size
    granted = max(0, min(size, item.amount - before))
    block = _Block(before, granted, 0, now + ttl, before + granted >= item.amount)
    with windows.lock:
        if len(windows.blocks) >= MAX_WINDOWS:
            windows.blocks = {k: b for k, b in windows.blocks.items() if b.reset > now}
            if len(windows.blocks) >= MAX_WINDOWS // 2:  # an address spray: forget them all, or
                windows.blocks = {}  # every new window rescans a full table under the lock
        windows.blocks[window] = block  # a block another thread reserved meanwhile is dropped: never late
        if block.granted:
            return _grant(block, item.amount)
    return False, 0, block.reset


def _offline(windows: _Windows, window: str, item: RateLimitItem, now: float) -> tuple[bool, int, float]:
    """The key's window while Redis is away: its last known allowance (module docstring)."""
    with windows.lock:
        block = windows.blocks.get(window)
        if block is None or block.reset <= now:
            block = windows.blocks[window] = _Block(0, item.amount, 0, now + item.get_expiry(), True)
        elif not block.full:
            block.granted, block.full = max(block.granted, item.amount - block.before), True
        if block.taken < block.granted:
            return _grant(block, item.amount)
    return False, 0, block.reset
