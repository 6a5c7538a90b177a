"""Staff grants: per-role caps (ops $100, support $50 at 2,500 credits per dollar), approval
requests above the cap decided by an uncapped admin, staff deductions; all audited."""
import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.credits import balances, grants
from app.credits.models import CreditAllocation, CreditGrantRequest
from app.rbac.models import PermissionOverride
from tests.credits.conftest import ledger_total


def actions(session, user_id):
    return [e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.target_id == str(user_id))
                                               .order_by(AuditEntry.id))]


def test_caps_per_role(session, make_user):
    assert grants.cap_credits(session, make_user(roles=("ops",))) == 250_000
    assert grants.cap_credits(session, make_user(roles=("support",))) == 125_000
    assert grants.cap_credits(session, make_user(roles=("support", "ops"))) == 250_000
    assert grants.cap_credits(session, make_user(roles=("admin",))) is None
    assert grants.cap_credits(session, make_user(roles=("super_admin",))) is None


def test_grant_through_an_override_alone_gets_the_smallest_cap(session, make_user):
    analyst = make_user(roles=("analyst",))
    session.add(PermissionOverride(user_id=analyst.id, permission="credits.grant", action="grant", reason="help"))
    session.flush()
    assert grants.cap_credits(session, analyst) == 125_000


def test_ops_grants_within_the_cap_at_once(session, frozen_clock, make_user, funded):
    ops, user = make_user(roles=("ops",)), funded(subscription=10)
    result = grants.grant(session, ops, user.id, 250_000, "Goodwill after outage")
    assert result["status"] == "granted" and result["balance"].bonus_credits == 250_000
    allocation = session.get(CreditAllocation, result["allocation_id"])
    assert (allocation.source, allocation.actor_id, allocation.reason) == ("admin_grant", ops.id,
                                                                          "Goodwill after outage")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "credits.granted")).one()
    assert (entry.actor_id, entry.reason, entry.after["amount"]) == (ops.id, "Goodwill after outage", 250_000)


def test_over_the_cap_files_a_request_that_an_admin_approves(session, frozen_clock, make_user, funded):
    ops, admin, user = make_user(roles=("ops",)), make_user(roles=("admin",)), funded()
    result = grants.grant(session, ops, user.id, 250_001, "Enterprise trial")
    assert result["status"] == "pending_approval"
    request = result["request"]
    assert balances.get_balance(session, user.id).total == 0
    with pytest.raises(DomainError) as err:
        grants.approve(session, ops, request.id)
    assert err.value.code == "self_approval"
    support = make_user(roles=("support",))
    with pytest.raises(DomainError) as err:
        grants.approve(session, support, request.id)
    assert err.value.code == "above_cap"
    grants.approve(session, admin, request.id, "ok for the trial")
    assert balances.get_balance(session, user.id).bonus_credits == 250_001
    assert session.get(CreditGrantRequest, request.id).status == "approved"
    with pytest.raises(DomainError) as err:
        grants.approve(session, admin, request.id)
    assert err.value.code == "already_decided"
    assert actions(session, user.id)[-2:] == ["credits.grant_requested", "credits.grant_approved"]
    assert ledger_total(session, user.id) == 250_001


def test_a_request_can_be_rejected_with_a_reason(session, frozen_clock, make_user, funded):
    support, admin, user = make_user(roles=("support",)), make_user(roles=("admin",)), funded()
    request = grants.grant(session, support, user.id, 125_001, "Big favour")["request"]
    with pytest.raises(DomainError) as err:
        grants.reject(session, admin, request.id, "")
    assert err.value.field == "note"
    grants.reject(session, admin, request.id, "Too much")
    assert session.get(CreditGrantRequest, request.id).status == "rejected"
    assert balances.get_balance(session, user.id).total == 0


def test_grant_rules(session, frozen_clock, make_user, funded):
    ops, analyst, user = make_user(roles=("ops",)), make_user(roles=("analyst",)), funded()
    with pytest.raises(DomainError) as err:
        grants.grant(session, analyst, user.id, 10, "no permission")
    assert (err.value.code, err.value.status) == ("permission_denied", 403)
    with pytest.raises(DomainError) as err:
        grants.grant(session, ops, ops.id, 10, "for me")
    assert err.value.code == "self_grant"
    for amount, code in ((0, "invalid_amount"), (-5, "invalid_amount"), ("10", "invalid_amount")):
        with pytest.raises(DomainError) as err:
            grants.grant(session, ops, user.id, amount, "reason")
        assert err.value.code == code
    with pytest.raises(DomainError) as err:
        grants.grant(session, ops, user.id, 10, " ")
    assert err.value.field == "reason"
    assert balances.get_balance(session, user.id).total == 0


def test_staff_deduction_needs_credits_deduct_and_ignores_the_cap(session, frozen_clock, make_user, funded):
    ops, admin, user = make_user(roles=("ops",)), make_user(roles=("admin",)), funded(subscription=100, cap=10)
    with pytest.raises(DomainError) as err:
        grants.staff_deduct(session, ops, user.id, 5, "correction")
    assert err.value.permission == "credits.deduct"
    result = grants.staff_deduct(session, admin, user.id, 50, "Duplicate grant reversed")
    assert result["balance"].total == 50 and result["balance"].mtd_credits == 0
    with pytest.raises(DomainError) as err:
        grants.staff_deduct(session, admin, user.id, 51, "too much")
    assert err.value.code == "insufficient_credits"
    assert "credits.deducted" in actions(session, user.id)
