"""Issue 19: one way to handle a form POST. Every admin POST route's view reaches
app.core.forms.handle_form (directly, or through a helper of its own module), so validation,
the DomainError-to-field mapping, the single commit and the redirect or 422 re-render are the
same everywhere. The hostile-input sweep (tests/security/test_08) checks at run time that every
422 there came through the helper and changed nothing."""
from __future__ import annotations

import inspect
import types

from app.core import forms

# Not a form: signing out everywhere ends the session it is posted from (nothing to validate or
# re-render), and the account page accepts a POST only to show itself again.
NOT_FORM_POSTS = {"auth.logout_everywhere", "auth.account"}


def _names(code: types.CodeType) -> set[str]:
    names, stack = set(), [code]
    while stack:
        current = stack.pop()
        names |= set(current.co_names)
        stack.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    return names


def _reaches_handle_form(func, seen: set, depth: int = 0) -> bool:
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None or func in seen:
        return False
    seen.add(func)
    names = _names(code)
    if func.__globals__.get("handle_form") is forms.handle_form and "handle_form" in names:
        return True
    if depth >= 3:
        return False
    return any(_reaches_handle_form(target, seen, depth + 1) for name in names
               if inspect.isfunction(target := func.__globals__.get(name)) and target.__module__.startswith("app."))


def test_every_admin_post_view_reaches_handle_form(app):
    posts = sorted({rule.endpoint for rule in app.url_map.iter_rules()
                    if "POST" in rule.methods and rule.rule.startswith("/admin")})
    assert len(posts) > 80  # the sweep found the routes
    missing = [endpoint for endpoint in posts if endpoint not in NOT_FORM_POSTS
               and not _reaches_handle_form(app.view_functions[endpoint], set())]
    assert missing == []


def test_the_check_tells_a_view_without_the_helper(app):
    """The walk is not vacuous: a view that commits by itself is caught."""
    from app.extensions import db

    def bare_view():
        db.session.commit()
        return "ok"

    assert not _reaches_handle_form(bare_view, set())
    assert _reaches_handle_form(app.view_functions["credits.grant"], set())
