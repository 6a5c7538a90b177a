"""Two worlds in one database, for the tests of DESIGN.md §3: production customers with real
rows in every domain beside the seed's test data, a fingerprint of every production row, and
the balance = ledger check.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, text

from app.core import clock, testmode
from app.core.models import Base
from app.core.world_guard import CHILDREN, world_of

DEVICE = {"device_name": "Work laptop", "os_type": "linux", "os_version": "6.1", "cpu_info": "x86_64"}
CHARGE = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300}
# Columns of the shared catalogue that test traffic may move (the test lanes).
TEST_LANE_COLUMNS = {"coupons": {"test_uses_count"}, "coupon_campaigns": {"test_spent"}}


def fingerprint_device(text_: str) -> str:
    return hashlib.sha256(text_.encode()).hexdigest()


def seed_catalogue(session, *, with_test_data: bool = False) -> None:
    """The shared catalogue (tiers, packs, prices, margins, versions); with_test_data, the whole
    seed: its coupons, test personas and their test rows too (slower: passwords are hashed)."""
    if with_test_data:
        from app.seed import SEEDERS

        with testmode.test_mode(catalogue=True):
            for seeder in SEEDERS:
                seeder(session, log=lambda *_: None)
    else:
        from app.billing import packs, tiers
        from app.credits.seed import _pricing
        from app.licensing.seed import seed_versions

        tiers.ensure_default_tiers(session)
        packs.ensure_default_packs(session)
        _pricing(session, {}, log=lambda *_: None)
        seed_versions(session)
    session.commit()


@dataclass
class Customer:
    user: object
    license: object
    live_key: object
    sandbox_key: object
    extra: dict = field(default_factory=dict)


def make_coupon(session, **values):
    """A production coupon valid around now (the seed's own are dated)."""
    from app.coupons.models import Coupon

    now = clock.now()
    coupon = Coupon(code=values.pop("code", f"LIVE{uuid.uuid4().hex[:8].upper()}"),
                    coupon_type=values.pop("coupon_type", "percentage_discount"),
                    discount_type=values.pop("discount_type", "percentage"),
                    discount_value=Decimal(str(values.pop("discount_value", "20.00"))),
                    max_uses=values.pop("max_uses", 100), max_uses_per_user=values.pop("max_uses_per_user", 1),
                    min_purchase_amount=Decimal("0"), tier_eligibility=[], billing_cycles=[],
                    valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30), **values)
    session.add(coupon)
    session.flush()
    return coupon


def production_customer(session, make_user, make_api_key, tier: str = "pro") -> Customer:
    """A production customer with a subscription, credits, a license with a device, a coupon
    redemption, a live and a sandbox key, and a ledger of usage."""
    from app.billing import subscriptions
    from app.coupons import redemption, validation
    from app.credits import metering
    from app.licensing import activations
    from app.licensing import service as licenses

    assert not testmode.active()
    user = make_user()
    subscriptions.provision(session, user, tier)
    lic = licenses.create_license(session, owner=user, actor=None, purchase_price="199.00",
                                  purchased_version="1.0.0", max_activations=2)
    activations.activate(session, lic, fingerprint_device(f"live-{user.id}"), DEVICE)
    metering.calculate_and_deduct(session, user.id, request_id=f"live-{user.id}", **CHARGE)
    coupon = make_coupon(session, coupon_type="bonus_credits", discount_type="credits", discount_value="500")
    attempt = validation.build_attempt(session, coupon, user, {"amount": "99.99", "tier": tier,
                                                               "billing_cycle": "monthly"}, is_test=False)
    redemption.redeem(session, coupon, attempt)
    session.commit()
    live, sandbox = make_api_key(user, "production"), make_api_key(user, "sandbox")
    return Customer(user, lic, live, sandbox)


def _rows(session, table, where=None):
    stmt = select(table)
    if where is not None:
        stmt = stmt.where(where)
    return sorted(repr(tuple(row)) for row in session.execute(stmt))


def production_fingerprint(session, *, catalogue: bool = True) -> dict[str, str]:
    """A hash of every production row of every table (the shared catalogue without its test
    lanes; bookkeeping tables left out: audit rows are checked on their own)."""
    session.expire_all()
    found = {}
    for name, table in sorted(Base.metadata.tables.items()):
        world = world_of(name)
        if world == "rows":
            rows = _rows(session, table, table.c.is_test.is_(False))
        elif world == "children":
            column = table.c[CHILDREN[name]]
            parent = next(iter(column.foreign_keys)).column.table
            rows = sorted(repr(tuple(r)) for r in session.execute(
                select(table).join(parent, column == parent.primary_key.columns.values()[0])
                .where(parent.c.is_test.is_(False))))
        elif world == "catalogue" and catalogue:
            skip = TEST_LANE_COLUMNS.get(name, set())
            columns = [c for c in table.c if c.name not in skip]
            rows = sorted(repr(tuple(r)) for r in session.execute(select(*columns)))
        else:
            continue
        found[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return found


def audit_count(session) -> int:
    from app.core.audit import AuditEntry

    return session.scalar(select(func.count()).select_from(AuditEntry))


def balance_mismatches(session, production_only: bool = True) -> list[tuple[int, int, int]]:
    """(user_id, balance, ledger) for every balance that differs from its ledger."""
    where = "WHERE b.is_test = false" if production_only else ""
    rows = session.execute(text(f"""
        SELECT b.user_id, b.subscription_credits + b.bonus_credits AS balance,
               COALESCE((SELECT SUM(a.amount) FROM credit_allocations a WHERE a.user_id = b.user_id), 0)
             - COALESCE((SELECT SUM(d.amount) FROM credit_deductions d WHERE d.user_id = b.user_id), 0) AS ledger
        FROM credit_balances b {where}""")).all()
    return [(r.user_id, int(r.balance), int(r.ledger)) for r in rows if int(r.balance) != int(r.ledger)]
