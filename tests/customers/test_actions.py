"""Account actions on the customer page: each behind its own permission, bad input re-rendered
with what was typed and nothing changed, every change audited."""
from __future__ import annotations

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.api.models import ApiKey
from app.users.models import User


def _actions(session, user_id):
    return [e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.target_type == "users",
                                                                        AuditEntry.target_id == str(user_id))
                                              .order_by(AuditEntry.id))]


def test_edit_profile_and_the_refusal_keeps_what_was_typed(login_as, make_user, session):
    customer = make_user(staff=False, first_name="Cara", last_name="Lopez")
    ops = login_as("ops")
    refused = ops.post(f"/admin/customers/{customer.id}/profile", data={"first_name": "Carla", "last_name": "L", "reason": ""})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Give a reason" in body and 'value="Carla"' in body
    session.expire_all()
    assert customer.first_name == "Cara"
    done = ops.post(f"/admin/customers/{customer.id}/profile", data={"first_name": "Carla", "last_name": "Lopez",
                                                                     "reason": "customer asked by email"})
    assert done.status_code == 302 and session.get(User, customer.id).first_name == "Carla"
    assert "users.profile_edited" in _actions(session, customer.id)
    assert login_as("support").post(f"/admin/customers/{customer.id}/profile",
                                    data={"first_name": "X", "reason": "xxx"}).status_code == 403


def test_suspend_unsuspend_ban_each_need_their_permission(login_as, make_user, session):
    customer = make_user(staff=False)
    support, ops, admin = login_as("support"), login_as("ops"), login_as("admin")
    url = f"/admin/customers/{customer.id}"
    assert support.post(f"{url}/suspend", data={"reason": "chargeback"}).status_code == 403
    page = support.get(url).get_data(as_text=True)
    assert 'id="suspend-button"' not in page and 'id="ban-button"' not in page
    assert ops.post(f"{url}/suspend", data={"reason": "chargeback"}).status_code == 302
    session.expire_all()
    assert customer.status == "suspended" and 'id="unsuspend-button"' in support.get(url).get_data(as_text=True)
    assert ops.post(f"{url}/ban", data={"reason": "abuse"}).status_code == 403  # ops has no users.ban
    assert support.post(f"{url}/unsuspend", data={"reason": "paid"}).status_code == 302
    session.expire_all()
    assert customer.status == "active"
    again = support.post(f"{url}/unsuspend", data={"reason": "paid"})
    assert again.status_code == 409 and "cannot be unsuspended" in again.get_data(as_text=True)
    assert admin.post(f"{url}/ban", data={"reason": "abuse"}).status_code == 302
    assert admin.post(f"{url}/unban", data={"reason": "appeal granted"}).status_code == 302
    assert _actions(session, customer.id) == ["users.suspended", "users.unsuspended", "users.banned", "users.unbanned"]


def test_gdpr_erasure_keeps_the_financial_records(login_as, sudo, customer_world, session):
    from app.billing.models import Invoice, PaymentTransaction

    user = customer_world.user
    admin = sudo(login_as("admin"))
    form = admin.get(f"/admin/customers/{user.id}/erase")
    assert form.status_code == 200 and "financial" in form.get_data(as_text=True).lower()
    wrong = admin.post(f"/admin/customers/{user.id}/erase", data={"confirm_email": "someone@else.com", "reason": "GDPR request"})
    assert wrong.status_code == 422 and 'value="GDPR request"' in wrong.get_data(as_text=True)
    done = admin.post(f"/admin/customers/{user.id}/erase",
                      data={"confirm_email": "cara.customer@example.com", "reason": "GDPR request of 1 Dec by email"})
    assert done.status_code == 302
    session.expire_all()
    erased = session.get(User, user.id)
    assert erased.email == f"erased-{user.id}@erased.invalid" and erased.first_name == "" and erased.deleted_at
    assert erased.password_hash is None
    assert session.scalar(select(ApiKey.revoked_at).where(ApiKey.user_id == user.id)) is not None
    assert session.query(Invoice).filter_by(user_id=user.id).count() == 1
    assert session.query(PaymentTransaction).filter_by(user_id=user.id).count() == 3
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "users.erased")).one()
    assert "cara" not in (entry.target_label or "") and entry.after["financial_records"] == "kept"
    assert admin.get(f"/admin/customers/{user.id}").status_code == 404
    assert login_as("ops").get(f"/admin/customers/{user.id}/erase").status_code == 403


def test_view_as_customer_is_read_only_audited_and_super_admin_only(login_as, customer_world, session):
    user = customer_world.user
    assert login_as("admin").get(f"/admin/customers/{user.id}/view-as").status_code == 403  # no users.impersonate
    page = login_as("super_admin").get(f"/admin/customers/{user.id}/view-as").get_data(as_text=True)
    assert 'id="view-as-banner"' in page and "read-only" in page and customer_world.invoice.number in page
    assert "<form" not in page.split('id="view-as-banner"')[1].split("</main>")[0]
    assert "users.viewed_as" in _actions(session, user.id)
