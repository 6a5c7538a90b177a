"""The expiry job: deactivates what has expired, logs each end as `system`, once."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core import clock
from app.rbac import service
from app.rbac.models import PermissionOverride, Role, RoleAssignment, RoleChangeLog


def _role_id(session, name):
    return session.scalar(select(Role.id).where(Role.name == name))


def test_only_due_rows_expire_and_a_second_run_finds_nothing(session, make_user, frozen_clock):
    admin, ops = make_user(roles=("admin",)), make_user(roles=("ops",))
    soon, later = clock.now() + timedelta(hours=1), clock.now() + timedelta(days=3)
    service.assign_role(session, admin, ops, _role_id(session, "analyst"), reason="Q4 planning", expires_at=soon)
    service.grant_override(session, admin, ops, "licenses.revoke", "grant", reason="Fraud case", expires_at=soon)
    keep = service.grant_override(session, admin, ops, "subscriptions.refund", "grant", reason="Migration",
                                  expires_at=later)
    frozen_clock.advance(timedelta(hours=2))
    assert service.expire_due(session) == {"role_expired": 1, "permission_override_expired": 1}
    assert service.expire_due(session) == {"role_expired": 0, "permission_override_expired": 0}
    assert keep.is_active and service.has_permission(session, ops, "subscriptions.refund")
    logs = session.scalars(select(RoleChangeLog).where(RoleChangeLog.changed_by_label == "system")
                           .order_by(RoleChangeLog.id)).all()
    assert [entry.action for entry in logs] == ["role_expired", "permission_override_expired"]
    # told in sequence: each log's "before" is the previous log's "after"
    assert logs[0].new_permissions == sorted(set(logs[1].old_permissions) - {"licenses.revoke"})
    assert "analytics.export_data" in logs[0].old_permissions and "analytics.export_data" not in logs[0].new_permissions
    assert logs[1].new_permissions == sorted(service.effective_permissions(session, ops.id))


def test_expired_revoke_override_gives_the_permission_back(session, make_user, frozen_clock):
    admin, support = make_user(roles=("admin",)), make_user(roles=("support",))
    service.grant_override(session, admin, support, "credits.grant", "revoke", reason="Training week",
                           expires_at=clock.now() + timedelta(days=7))
    assert not service.has_permission(session, support, "credits.grant")
    frozen_clock.advance(timedelta(days=7))
    assert service.has_permission(session, support, "credits.grant")
    service.expire_due(session)
    log = session.scalars(select(RoleChangeLog).where(RoleChangeLog.action == "permission_override_expired")).one()
    assert "credits.grant" not in log.old_permissions and "credits.grant" in log.new_permissions


def test_test_accounts_expiry_rows_are_test_data(session, make_user, frozen_clock):
    admin = make_user(roles=("admin",))
    tester = make_user(roles=("ops",), test=True)
    service.grant_override(session, admin, tester, "licenses.revoke", "grant", reason="Try it",
                           expires_at=clock.now() + timedelta(minutes=5))
    frozen_clock.advance(timedelta(minutes=5))
    service.expire_due(session)
    log = session.scalars(select(RoleChangeLog).where(RoleChangeLog.action == "permission_override_expired")).one()
    assert log.is_test


@pytest.mark.postgres
def test_two_runs_at_once_log_each_expiry_once(app, real_db, make_user):
    """Two workers (rq cron overlap) race on the same due rows; FOR UPDATE SKIP LOCKED splits them."""
    session = real_db.session
    admin = make_user(roles=("admin",))
    targets = [make_user(roles=("support",)) for _ in range(6)]
    for target in targets:
        for perm in ("licenses.view", "coupons.view"):
            session.add(PermissionOverride(user_id=target.id, permission=perm, action="revoke", reason="Race",
                                           granted_by_id=admin.id, expires_at=clock.now() - timedelta(seconds=1)))
    session.commit()
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                results.append(service.expire_due(real_db.session))
                real_db.session.commit()
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(r["permission_override_expired"] for r in results) == 12
    count = session.scalar(select(func.count()).select_from(RoleChangeLog)
                           .where(RoleChangeLog.action == "permission_override_expired"))
    assert count == 12
    assert session.scalar(select(func.count()).select_from(PermissionOverride)
                          .where(PermissionOverride.is_active.is_(True))) == 0
    assert session.scalar(select(func.count()).select_from(RoleAssignment)) == 7
