"""The Flask class the app is made of: Flask, with its per-call coroutine test remembered, and
its response class, which sends the headers the app makes itself as they are.

Flask passes every request hook and view through ensure_sync(), which asks
inspect.iscoroutinefunction() each time: 14 calls a request, ~3% of a licence validation's
CPU (cProfile). The app has no async views; ensure_sync is documented as the method to
override, and a function found synchronous once is remembered (hooks and views are a fixed
set, so the set stays small).
"""
from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response


class RephloResponse(Response):
    """Flask's Response; `fixed_headers` are (name, value) pairs of the app's own making
    (constants, numbers, request ids it checked), appended to the header list when the answer is
    sent. Headers.add() checks each value for newlines, ~4,000 instructions a header: the eight
    an API answer carries (security, rate limit, request id) were ~5% of a keyless license
    validation (callgrind). They are not in `headers`: a hook that must read a header sets it
    there. get_wsgi_response() is werkzeug's documented place to change what is sent."""

    fixed_headers: tuple[tuple[str, str], ...] = ()

    def get_wsgi_response(self, environ):
        app_iter, status, headers = super().get_wsgi_response(environ)
        if self.fixed_headers:
            headers.extend(self.fixed_headers)  # to_wsgi_list(): a list of this call's own
        return app_iter, status, headers


def add_fixed_headers(response: Response, pairs: Iterable[tuple[str, str]]) -> None:
    """Headers the app makes itself (see RephloResponse) on an answer; through Headers.add() on
    a response of another class."""
    if isinstance(response, RephloResponse):
        response.fixed_headers = (*response.fixed_headers, *pairs)
    else:
        response.headers.extend(pairs)


class RephloFlask(Flask):
    response_class = RephloResponse

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
