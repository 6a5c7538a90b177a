"""Every admin route, requested as each of the six system roles, allows or denies as the catalogue says.

The routes come from app.url_map (so a new screen is covered the day it lands); what each
one requires comes from its permission_required decorator, and the screens of the RBAC
issue are pinned below so that a weakened decorator fails here.
"""
from __future__ import annotations

import pytest

from app.rbac.catalogue import SYSTEM_ROLES

ROLE_PERMISSIONS = {spec["name"]: set(spec["permissions"]) for spec in SYSTEM_ROLES}
STAFF_ONLY = {"analytics.dashboard"}  # any signed-in staff member
SUPER_ADMIN_ONLY: set[str] = set()  # delete-all is users.delete + sudo since issue 14
# Old addresses kept as redirects to the screen that replaced them (allowed: 302 there, not 200).
MOVED = {"billing_admin.refund_requests": "/admin/approvals?kind=refund"}
PINNED = {
    "users.index": ("users.view",),
    "users.detail": ("users.view",),
    "rbac.roles": ("roles.view",),
    "rbac.logs.audit": ("roles.view_audit_log",),
    "rbac.logs.audit_csv": ("roles.view_audit_log",),
    "rbac.logs.changes": ("roles.view_audit_log",),
    "rbac.logs.changes_csv": ("roles.view_audit_log",),
    "rbac.assign_role": ("roles.assign",),
    "rbac.change_role": ("roles.assign",),
    "rbac.revoke_role": ("roles.assign",),
    "rbac.grant_override": ("roles.assign",),
    "rbac.remove_override": ("roles.assign",),
    "rbac.create_role": ("roles.create",),
    "licensing.revoke": ("licenses.revoke",),
    "licensing.suspend": ("licenses.suspend",),
    "licensing.detail": ("licenses.view",),
}

# The dashboard (analytics.dashboard, any staff member) shows each card only with this permission
# (and analytics.view_dashboard): the permission of the list its figures link to.
DASHBOARD_CARDS = {
    "new_users": "users.view",
    "subscriptions": "subscriptions.view",
    "revenue": "analytics.view_revenue",
    "failed_payments": "subscriptions.view",
    "credits": "analytics.view_usage",
    "top_models": "analytics.view_usage",
    "licenses": "licenses.view",
    "coupons": "coupons.view",
    "fraud": "coupons.approve_redemption",
}


def _admin_rules(app, method: str):
    return sorted((rule for rule in app.url_map.iter_rules()
                   if rule.rule.startswith("/admin") and method in rule.methods
                   and not rule.endpoint.startswith("auth.")), key=lambda r: r.rule)


def _required(app, endpoint: str) -> tuple[str, ...]:
    return tuple(getattr(app.view_functions[endpoint], "required_permissions", ()))


@pytest.fixture
def sample_ids(make_user, make_api_key, session):
    """A value for every URL variable an admin route may have."""
    from app.notifications.service import queue_email

    target = make_user(staff=False, totp=False)
    message = queue_email(session, kind="notice", subject="Sample", body="x", user=target)
    message.status = "sent"  # not retryable: an allowed empty POST answers 422
    key = make_api_key(user=target)
    from app.core.jobs import JobRecord
    from app.sandbox.jobs import DELETE_ALL_KIND

    job = JobRecord(kind=DELETE_ALL_KIND, status="finished")
    session.add(job)
    from app.core import clock as app_clock
    from app.sandbox.clock_models import TestClock

    from decimal import Decimal

    from app.billing import periods, tiers as tier_service
    from app.billing.models import CreditPack
    from app.billing.subscriptions import new_subscription

    tiers = tier_service.ensure_default_tiers(session)
    subscription = new_subscription(session, target, tiers["pro"], "monthly",
                                    start=periods.start_of_day(app_clock.now().date()), status="active")
    pack = CreditPack(name="Matrix pack", credits=1000, price=Decimal("9.99"))
    session.add(pack)
    from datetime import timedelta

    from app.coupons.models import Campaign, Coupon

    now = app_clock.now()
    campaign = Campaign(name="Matrix campaign", campaign_type="promotional", starts_at=now - timedelta(days=1),
                        ends_at=now + timedelta(days=30), budget_limit=Decimal("100.00"), spent=Decimal("0.00"))
    session.add(campaign)
    session.flush()
    coupon = Coupon(code="MATRIX20", coupon_type="percentage_discount", discount_type="percentage",
                    discount_value=Decimal("20.00"), max_uses=10, max_uses_per_user=1,
                    min_purchase_amount=Decimal("0"), tier_eligibility=[], billing_cycles=[],
                    valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=7), campaign_id=campaign.id)
    session.add(coupon)
    test_user = make_user(test=True)
    test_clock = TestClock(user_id=test_user.id, frozen_time=app_clock.now(), is_test=True)
    session.add(test_clock)
    from app.api.clients import create_client

    client, _ = create_client(session, target, client_id="matrix-client", name="Matrix", redirect_uris="",
                              is_test=True)
    from app.licensing import activations, service as licensing
    from app.licensing.models import AppVersion
    from app.licensing.seed import seed_versions

    seed_versions(session)
    lic = licensing.create_license(session, owner=target, actor=None, purchase_price="299.99", purchased_version="1.0.0")
    device = activations.activate(session, lic, "ab" * 32, {"device_name": "Matrix PC"}).activation
    version = session.query(AppVersion).filter_by(version="2.0.0").one()
    from app.billing.models import Invoice

    invoice = Invoice(user_id=target.id, subscription_id=subscription.id, kind="period", status="paid")
    session.add(invoice)
    session.flush()
    session.commit()
    return {"user_id": target.id, "assignment_id": 1, "override_id": 1, "message_id": message.id,
            "job_id": job.id, "clock_id": test_clock.id, "key_id": key.key.id, "pk": client.id,
            "subscription_id": subscription.id, "pack_id": pack.id, "tier_id": tiers["pro"].id,
            "request_id": 999999, "decision": "approve", "campaign_id": campaign.id, "coupon_id": coupon.id,
            "detection_id": 999999, "rule_id": 999999, "redemption_id": 999999, "tier": "pro", "model_name": "gpt-4-turbo",
            "provider_id": 999999, "license_id": lic.id, "activation_id": device.id, "version_id": version.id,
            "section": "subscription", "invoice_id": invoice.id, "role_id": 1}


def _url(rule, sample_ids) -> str:
    missing = [arg for arg in rule.arguments if arg not in sample_ids]
    assert not missing, f"add a sample value for {missing} ({rule.rule}) to sample_ids"
    return rule.build({arg: sample_ids[arg] for arg in rule.arguments}, append_unknown=False)[1]


def test_every_admin_route_is_permission_checked(app):
    for method in ("GET", "POST"):
        for rule in _admin_rules(app, method):
            if rule.endpoint in STAFF_ONLY:
                continue
            assert _required(app, rule.endpoint), f"{rule.rule} ({rule.endpoint}) has no permission_required"
    for endpoint, permissions in PINNED.items():
        assert _required(app, endpoint) == permissions, endpoint


def test_dashboard_cards_are_pinned_to_the_permissions_of_their_lists(app):
    from app.analytics.service import CARDS, DASHBOARD_PERMISSION

    assert DASHBOARD_PERMISSION == "analytics.view_dashboard"
    assert {card.name: card.permission for card in CARDS} == DASHBOARD_CARDS
    for card in CARDS:  # a figure links to a list its viewer can open
        assert card.permission in _required(app, card.endpoint), card.name


@pytest.mark.parametrize("role", list(ROLE_PERMISSIONS))
def test_get_routes_allow_and_deny_per_catalogue(app, login_as, sudo, sample_ids, role):
    client = sudo(login_as(role))  # sudo-guarded pages (delete all test data) would redirect otherwise
    rules = _admin_rules(app, "GET")
    assert len(rules) >= 8
    outcomes = {}
    for rule in rules:
        needed = _required(app, rule.endpoint)
        allowed = all(p in ROLE_PERMISSIONS[role] for p in needed) and (
            rule.endpoint not in SUPER_ADMIN_ONLY or role == "super_admin")
        response = client.get(_url(rule, sample_ids))
        outcomes[rule.endpoint] = response.status_code
        if allowed and rule.endpoint in MOVED:
            assert response.status_code == 302 and response.location.endswith(MOVED[rule.endpoint]), rule.rule
        elif allowed:
            assert response.status_code == 200, f"{role} should open {rule.rule}"
        else:
            assert response.status_code == 403, f"{role} should be refused {rule.rule}"
            missing = next((p for p in needed if p not in ROLE_PERMISSIONS[role]), None)
            assert missing is None or missing.encode() in response.data
    assert outcomes  # every rule was requested


@pytest.mark.parametrize("role", list(ROLE_PERMISSIONS))
def test_post_routes_refuse_roles_without_the_permission(app, login_as, sudo, sample_ids, role):
    """Allowed roles get past the permission check (an empty post is bad input, 422, or a no-input
    action such as rotating a secret); the others get 403 naming the permission."""
    client = sudo(login_as(role))
    for rule in _admin_rules(app, "POST"):
        needed = _required(app, rule.endpoint)
        if not needed:
            continue
        allowed = all(p in ROLE_PERMISSIONS[role] for p in needed) and (
            rule.endpoint not in SUPER_ADMIN_ONLY or role == "super_admin")
        if getattr(app.view_functions[rule.endpoint], "requires_a_write_permission", False):
            from app.rbac.catalogue import is_read_permission  # approval requests: not read-only roles

            allowed = allowed and any(not is_read_permission(p) for p in ROLE_PERMISSIONS[role])
        response = client.post(_url(rule, sample_ids), data={})
        if allowed:
            assert response.status_code != 403 and response.status_code < 500, f"{role} POST {rule.rule}"
        else:
            assert response.status_code == 403, f"{role} POST {rule.rule}"
