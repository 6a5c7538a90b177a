"""The write guard walks every table: in test mode no production row changes (DESIGN.md §3)."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from app.core import testmode
from app.core.models import Base, IsTestMixin
from app.core.testmode import TestModeViolation
from app.core.world_guard import BOOKKEEPING, CATALOGUE, CHILDREN, world_of
from app.extensions import db
from tests.support.worlds import production_customer, production_fingerprint, seed_catalogue

# Tables the fixture below leaves without a production row (their writes need Stripe or a job);
# they are still guarded by the same rule, proven for the others.
NOT_POPULATED = {"dunning_attempts", "refund_requests", "payment_transactions", "invoices", "proration_events",
                 "credit_pack_purchases", "credit_grant_requests", "license_upgrades", "permission_overrides",
                 "role_change_log", "outbox_messages", "coupon_fraud_detections", "vendor_keys", "oauth_clients",
                 "oauth_tokens", "oauth_authorization_codes", "oauth_consents", "test_clocks", "token_usage_daily", "credit_usage_daily", "api_request_days",
                 "audit_log", "job_records", "idempotency_records", "invoice_lines", "coupon_campaigns",
                 "coupon_validation_rules"}


def test_every_table_is_in_exactly_one_world_class():
    tables = Base.metadata.tables
    assert not (CATALOGUE & BOOKKEEPING) and not (set(CHILDREN) & (CATALOGUE | BOOKKEEPING))
    assert {name for name in tables if world_of(name) == "unclassified"} == set()
    for mapper in Base.registry.mappers:
        if issubclass(mapper.class_, IsTestMixin):
            assert world_of(mapper.local_table.name) in ("rows", "bookkeeping"), mapper.class_
    assert (CATALOGUE | BOOKKEEPING | set(CHILDREN)) - set(tables) == {"cleanup_stage"}


@pytest.fixture
def populated(session, make_user, make_api_key):
    from app.rbac.models import Role, RoleAssignment

    seed_catalogue(session)
    customer = production_customer(session, make_user, make_api_key)
    staff = make_user(roles=("ops",))
    session.commit()
    return customer, staff, session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == staff.id)).all(), Role


def test_no_production_row_of_any_table_changes_in_test_mode(populated):
    before = production_fingerprint(db.session)
    checked = set()
    for name, table in sorted(Base.metadata.tables.items()):
        world = world_of(name)
        if world not in ("rows", "catalogue"):
            continue
        pk = table.primary_key.columns.values()[0]
        where = table.c.is_test.is_(False) if world == "rows" else None
        probe = select(pk).limit(1)
        row_id = db.session.scalar(probe.where(where) if where is not None else probe)
        if row_id is None:
            assert name in NOT_POPULATED, f"{name} has no production row in the fixture"
            continue
        column = next((c for c in table.c if not c.primary_key and c.name != "is_test"), pk)
        for statement in (update(table).where(pk == row_id).values({column.name: column}),
                          delete(table).where(pk == row_id)):
            with testmode.test_mode(), pytest.raises(TestModeViolation):
                db.session.execute(statement)
            db.session.rollback()
        mapper = next((m for m in Base.registry.mappers if m.local_table is table), None)
        if mapper is not None and len(table.primary_key.columns) == 1:
            with testmode.test_mode(), pytest.raises(TestModeViolation):
                obj = db.session.get(mapper.class_, row_id)
                db.session.delete(obj)
                db.session.flush()
            db.session.rollback()
        checked.add(name)
    assert {"users", "credit_balances", "credit_allocations", "credit_deductions", "token_usage", "subscriptions",
            "licenses", "license_activations", "coupon_redemptions", "coupon_user_uses", "api_keys",
            "role_assignments", "coupons", "subscription_tiers", "model_prices", "margin_configs"} <= checked
    assert production_fingerprint(db.session) == before


def test_a_test_persona_may_administer_the_catalogue_but_not_a_customer(populated):
    from app.billing.models import SubscriptionTier

    customer = populated[0].user
    with testmode.test_mode(catalogue=True):
        tier = db.session.scalar(select(SubscriptionTier).where(SubscriptionTier.name == "pro"))
        tier.description = "Edited by a test persona"
        db.session.flush()
        with pytest.raises(TestModeViolation):
            customer.last_name = "Changed"
            db.session.flush()
    db.session.rollback()


def test_live_mode_pays_one_context_read(populated):
    """Outside test mode the guard never queries: a production write runs as before."""
    customer = populated[0].user
    customer.first_name = "Renamed"
    db.session.flush()
    assert db.session.get(type(customer), customer.id).first_name == "Renamed"
