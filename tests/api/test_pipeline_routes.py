"""Every /api/v1 route is served by the one pipeline (app/api/pipeline.py), and what a route
declares (its scopes, its permission) is enforced on the fast path too: an API key with an
Idempotency-Key on PostgreSQL, authenticated and claimed in one statement."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.api import api_bp, pipeline
from app.api.models import IdempotencyRecord
from app.core import pg
from app.credits.models import CreditAllocation
from app.extensions import db

ROOT = Path(__file__).resolve().parents[2]


def test_every_api_rule_is_served_by_the_pipeline(app):
    rules = pipeline.api_routes(app)
    assert len(rules) >= 40
    for rule, view in rules:
        spec = getattr(view, "route", None)
        assert isinstance(spec, pipeline.Route), f"{rule} is not declared with app.api.pipeline.route()"
        assert view.__code__.co_qualname == "route.<locals>.declare.<locals>.endpoint", (
            f"{rule}: its view function is not the pipeline's endpoint")
        assert not hasattr(spec.view, "__wrapped__"), f"{rule}: the route's view is wrapped by a decorator"
        assert rule == api_bp.url_prefix + spec.rule


def test_route_modules_stack_no_decorators_on_api_views():
    """An API view has exactly one decorator, @route(...): a check stacked on it would run on no
    path the pipeline knows of."""
    modules = [ROOT / "app" / "api" / "health.py", ROOT / "app" / "api" / "oauth.py", ROOT / "app" / "api" / "openapi.py"]
    modules += sorted(ROOT.glob("app/*/api*.py"))
    seen = 0
    for path in modules:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
            if "route" in names:
                seen += 1
                assert names == ["route"], f"{path.name}:{node.lineno} {node.name} stacks {names}"
            assert not any(name.startswith("api_bp.") and name != "api_bp.errorhandler" for name in names), (
                f"{path.name}:{node.lineno} {node.name} registers a route around the pipeline")
    assert seen >= 40


def test_an_admin_route_must_name_a_permission():
    with pytest.raises(TypeError, match="permission"):
        pipeline.route("GET", "/admin/anything", scopes="credits:admin")(lambda: None)


def test_one_test_says_whether_a_request_is_for_the_api():
    """`is this an API request?` is app/core/api_paths.py's, nowhere else a path prefix."""
    offenders = []
    for path in ROOT.glob("app/**/*.py"):
        if path.name == "api_paths.py":
            continue
        text = path.read_text()
        if 'startswith("/api' in text or "startswith('/api" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.fixture
def statements(monkeypatch):
    seen = []
    real = pg.run

    def spy(session, stmt, params):
        seen.append(stmt)
        return real(session, stmt, params)

    monkeypatch.setattr(pg, "run", spy)
    return seen


@pytest.mark.postgres
def test_a_routes_permission_is_enforced_on_the_fast_path(client, make_api_key, make_user, statements):
    """An admin route with an API key and an Idempotency-Key on PostgreSQL takes the one-statement
    authentication and claim, and still refuses an owner without the route's permission, undoing
    the claim."""
    support = make_api_key(make_user(roles=("auditor",)), "production")  # no credits.grant
    target = make_user()
    response = client.post("/api/v1/admin/credits/allocate", json={"user_id": target.id, "amount": 10,
                                                                   "reason": "not allowed"},
                           headers={**support.headers, "Idempotency-Key": "perm-1"})
    assert statements[0] is pipeline.AUTHENTICATE_AND_CLAIM  # the fast path ran
    assert (response.status_code, response.json["error"]["code"]) == (403, "missing_permission")
    assert "credits.grant" in response.json["error"]["message"]
    assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    assert db.session.scalar(select(func.count()).select_from(CreditAllocation)) == 0


@pytest.mark.postgres
def test_a_routes_scope_is_enforced_on_the_fast_path_of_every_idempotent_route(client, make_api_key, make_user,
                                                                               statements):
    key = make_api_key(make_user(), "production", scopes=["credits:read"])
    for path, body in [("/coupons/redeem", {"code": "X", "purchase_type": "subscription"}),
                       ("/credits/deduct", {"amount": 1, "deduction_type": "custom"}),
                       ("/customers", {"email": "x@example.com"})]:
        statements.clear()
        response = client.post(f"/api/v1{path}", json=body, headers={**key.headers, "Idempotency-Key": path})
        assert statements[0] is pipeline.AUTHENTICATE_AND_CLAIM, path
        assert (response.status_code, response.json["error"]["code"]) == (403, "insufficient_scope"), path
    assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


@pytest.mark.postgres
def test_a_read_takes_one_statement_to_authenticate(client, make_api_key, make_user, statements):
    key = make_api_key(make_user(), "production")
    response = client.get("/api/v1/credits/balance", headers=key.headers)
    assert response.status_code == 200 and statements[0] is pipeline.AUTHENTICATE
