"""The Flask class the app is made of: Flask, with its per-call coroutine test remembered.

Flask passes every request hook and view through ensure_sync(), which asks
inspect.iscoroutinefunction() each time: 14 calls a request, ~3% of a licence validation's
CPU (cProfile). The app has no async views; ensure_sync is documented as the method to
override, and a function found synchronous once is remembered (hooks and views are a fixed
set, so the set stays small).
"""
from __future__ import annotations

from flask import Flask


class RephloFlask(Flask):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: set = set()

    def ensure_sync(self, func):
        try:
            if func in self._sync_functions:
                return func
        except TypeError:  # an unhashable callable: ask Flask
            return super().ensure_sync(func)
        synced = super().ensure_sync(func)
        if synced is func:
            self._sync_functions.add(func)
        return synced
