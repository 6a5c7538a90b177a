"""The objects behind Flask's `request`, `g` and `current_app` proxies, for code that runs on
every API request.

An attribute read through a werkzeug LocalProxy (`request.path`, `g.get(...)`,
`current_app.config`) costs ~7,500 instructions on CPython 3.11 (callgrind): the name is not the
proxy's own, so Python raises and catches an AttributeError before the proxy's __getattr__
forwards the read. Taking the object once costs ~1,500, and each read after it next to nothing.
An API request made ~45 such reads in the hooks and steps it passes through (a quarter of a
keyless license validation's instructions), so that code takes the object once per function:

    req = current.request()
    if req.path.startswith(...) and req.method == "POST": ...

Elsewhere (views, forms, templates) the proxies are fine. `_get_current_object` is werkzeug's
documented way to the proxied object; tests/core/test_library_internals.py pins it.
"""
from __future__ import annotations

from flask import current_app as _app_proxy
from flask import g as _g_proxy
from flask import request as _request_proxy

request = _request_proxy._get_current_object  # the flask.Request of this request
g = _g_proxy._get_current_object  # this app context's g
app = _app_proxy._get_current_object  # the Flask app serving it
