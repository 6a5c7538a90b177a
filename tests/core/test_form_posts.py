"""Issue 19: one way to handle a form POST. Every form POST route's view (the staff console, its
sign-in steps and the customers' /account pages) reaches
app.core.forms.handle_form (directly, or through a helper of its own module), so validation,
the DomainError-to-field mapping, the single commit and the redirect or 422 re-render are the
same everywhere. The hostile-input sweep (tests/security/test_08) checks at run time that every
422 there came through the helper and changed nothing."""
from __future__ import annotations

import inspect
import types

from app.core import forms

# The screens people post forms to. The API (/api/v1), OAuth's machine endpoints and the Stripe
# webhook answer programs, each through its own pipeline.
FORM_PREFIXES = ("/admin", "/auth/", "/account/", "/oauth/authorize")
NOT_FORM_POSTS: set[str] = set()


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


def test_every_form_post_view_reaches_handle_form(app):
    posts = sorted({rule.endpoint for rule in app.url_map.iter_rules()
                    if "POST" in rule.methods and rule.rule.startswith(FORM_PREFIXES)})
    assert len(posts) > 100  # the sweep found the routes
    # the sign-in steps and the customers' pages are in it
    assert {"auth.login", "auth.verify", "auth.enrol", "auth.sudo", "auth.logout", "auth.logout_everywhere",
            "accounts.sign_in", "accounts.sign_up", "accounts.create_key", "accounts.reset_password",
            "oauth.authorize"} <= set(posts)
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


def test_the_account_page_takes_no_post(app):
    """Its forms post to their own routes; a POST to the page itself has nothing to do."""
    methods = {m for rule in app.url_map.iter_rules() if rule.endpoint == "auth.account" for m in rule.methods}
    assert "GET" in methods and "POST" not in methods


# Modules other than views, jobs, CLI, seeds and the API pipeline that may commit, and why. A new
# service that commits fails here: the view (handle_form) or the API pipeline commits once.
COMMITS_ALLOWED = {
    "app/accounts/service.py": "a refused sign-in's audit row must outlive the refusal's rollback",
    "app/auth/service.py": "a refused sign-in's audit row must outlive the refusal's rollback",
    "app/billing/changes.py": "the state is durable before a charge or a refund goes to Stripe",
    "app/billing/collection.py": "a charge is recorded before and after Stripe is called",
    "app/billing/license_sales.py": "the sale is durable before its charge goes to Stripe",
    "app/billing/packs.py": "the purchase is durable before its charge goes to Stripe",
    "app/billing/payments.py": "a payment attempt is recorded before and after Stripe is called",
    "app/billing/refunds.py": "a refund is recorded before and after Stripe is called",
    "app/billing/renewal.py": "the renewal job commits each subscription on its own",
    "app/billing/webhooks.py": "a Stripe event is applied and recorded once, outside any form",
    "app/notifications/service.py": "the delivery job commits each message as it is sent",
    "app/sandbox/cleanup.py": "the cleanup job deletes and commits in batches",
    "app/core/forms.py": "the one commit of a staff form POST",
    "app/core/jobs.py": "a job record is durable before the job is queued",
    "app/core/pg.py": "the API pipeline's own transaction",
}


def test_only_the_form_helper_the_api_and_named_payment_steps_commit():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    committing = set()
    for path in (root / "app").rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        name = path.name
        if (relative.startswith("app/api/") or "views" in name or name in ("jobs.py", "cli.py", "seed.py", "home.py",
                                                                            "scheduler.py")
                or relative in ("app/cli.py",)):
            continue
        if ".commit()" in path.read_text():
            committing.add(relative)
    assert sorted(committing - set(COMMITS_ALLOWED)) == []
