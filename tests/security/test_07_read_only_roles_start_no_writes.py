"""Issue 15 item 7: read-only roles must not reach a write (analyst and support could start the
summaries rebuild job, gated by analytics.view_usage only).

Every admin POST route (from app.url_map) x the six system roles: a POST is a write unless it is
listed below as a pure computation, so it must require a write permission; a role is let through
only when it holds every permission the route requires; the read-only roles are refused everything
and the sweep leaves no audit row and no job behind. Routes are requested, not read from the
decorator only, so a view that stops using permission_required fails here too.
"""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.rbac.catalogue import ALL_PERMISSIONS, SYSTEM_ROLES

ROLE_PERMISSIONS = {spec["name"]: set(spec["permissions"]) for spec in SYSTEM_ROLES}
READ_PERMISSIONS = {p for p in ALL_PERMISSIONS
                    if p.split(".", 1)[1].startswith("view") or p == "analytics.export_data"}
READ_ONLY_ROLES = {role for role, perms in ROLE_PERMISSIONS.items() if perms <= READ_PERMISSIONS}
# POSTs that compute and show, and change nothing (a form too large for a query string).
PURE_POSTS = {"coupons.preview"}


_PLACEHOLDER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")  # <converter(args):name> or <name>


def _post_rules(app):
    return [rule for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/admin") and "POST" in rule.methods and not rule.endpoint.startswith("auth.")]


def _required(app, endpoint):
    return set(getattr(app.view_functions[endpoint], "required_permissions", ()))


def _asks(app, endpoint) -> bool:
    """An approval request: its view permissions plus any write permission (auth/guards.py)."""
    return getattr(app.view_functions[endpoint], "requires_a_write_permission", False)


def _sample(rule, arg):
    """Any value the URL accepts: the permission check answers before the view looks it up."""
    from werkzeug.routing import AnyConverter, IntegerConverter

    if arg in (rule.defaults or {}):
        return rule.defaults[arg]
    # The argument's converter class, from the rule's text (Rule._converters is werkzeug's own).
    name = next(conv or "default" for conv, var in _PLACEHOLDER.findall(rule.rule) if var == arg)
    converter = rule.map.converters[name]
    if issubclass(converter, IntegerConverter):
        return 999999
    return "approve" if issubclass(converter, AnyConverter) else "x"


def test_the_read_only_roles_are_the_seeds(app):
    assert READ_ONLY_ROLES == {"analyst", "auditor"}
    assert "credits.grant" in ROLE_PERMISSIONS["support"]  # support writes, within its permissions only


def test_every_admin_post_requires_a_write_permission(app):
    rules = _post_rules(app)
    assert len(rules) > 50
    weak = sorted(rule.rule for rule in rules
                  if rule.endpoint not in PURE_POSTS and not _asks(app, rule.endpoint)
                  and not _required(app, rule.endpoint) - READ_PERMISSIONS)
    assert weak == []
    assert _required(app, "credits.rebuild_summaries") - READ_PERMISSIONS


def test_post_routes_x_roles_reach_a_view_only_with_its_write_permission(app, login_as, sudo, session):
    from app.core.audit import AuditEntry
    from app.core.jobs import JobRecord

    def counts():
        return (session.scalar(select(func.count()).select_from(AuditEntry)),
                session.scalar(select(func.count()).select_from(JobRecord)))

    before = counts()
    rules = _post_rules(app)
    for role, perms in ROLE_PERMISSIONS.items():
        client = sudo(login_as(role))
        for rule in rules:
            needed = _required(app, rule.endpoint)
            asks = _asks(app, rule.endpoint)
            if needed <= perms and (not asks or perms - READ_PERMISSIONS):
                # Let through: by a write permission the role holds (or a pure computation).
                assert rule.endpoint in PURE_POSTS or asks or (needed - READ_PERMISSIONS) & perms, (role, rule.rule)
                assert role not in READ_ONLY_ROLES or rule.endpoint in PURE_POSTS, (role, rule.rule)
                continue
            url = rule.build({arg: _sample(rule, arg) for arg in rule.arguments}, append_unknown=False)[1]
            response = client.post(url, data={"day": "2025-11-08"})
            assert response.status_code == 403, f"{role} POST {rule.rule}: {response.status_code}"
    assert counts() == before  # no refused request wrote an audit row or started a job


def test_analyst_and_support_cannot_start_the_summaries_rebuild(login_as, session):
    from app.core.jobs import JobRecord

    for role in ("analyst", "support", "ops"):
        response = login_as(role).post("/admin/credits/summaries/rebuild", data={"day": "2025-11-08"})
        assert response.status_code == 403, role
    assert session.scalar(select(func.count()).select_from(JobRecord)) == 0
    page = login_as("analyst").get("/admin/credits/")
    assert page.status_code == 200 and b"summaries/rebuild" not in page.data  # no button it cannot use
