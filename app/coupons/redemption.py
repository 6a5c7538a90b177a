"""Redeeming a coupon, exactly within its limits under concurrency, and reversing a redemption.

Every attempt writes one redemption row (success, or failed with its code), which is also
what the fraud detectors count. A successful attempt takes its limits in one savepoint, in
a fixed order (per-user row, coupon row, campaign row) so concurrent redemptions never
deadlock, with the shared rows last so that their locks are held only for the commit:
1. per-user: INSERT .. ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = uses + 1
   WHERE uses < max_per_user RETURNING: a racing second redemption by the same user waits
   for the first and then finds the limit taken;
2. coupon: UPDATE coupons SET uses_count = uses_count + 1 WHERE id = :id AND uses_count <
   max_uses RETURNING;
3. campaign: UPDATE coupon_campaigns SET spent = spent + :cost WHERE spent + :cost <=
   budget_limit RETURNING.
PostgreSQL re-checks each WHERE against the latest committed row after waiting on its lock,
so 100 parallel redemptions of a coupon with 10 uses left give exactly 10 successes. Any
refusal rolls the savepoint back and the attempt is recorded as failed with that code.

A live attempt on PostgreSQL with nothing to give but the answer (the common checkout
discount) skips the savepoint: after the per-user claim, steps 2 and 3 and the redemption
insert are one statement (hot.py), so a hot coupon's row is locked for that statement and
the commit only; a refusal gives the per-user use back.
"""
from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.util import identity_key

from app.core import audit, clock, pg, testmode
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound
from app.coupons import benefits, fraud, hot, validation
from app.coupons.discount import ZERO, Benefit
from app.coupons.models import Campaign, Coupon, CouponUserUse, Redemption
from app.coupons.validation import MESSAGES, Attempt


class LimitRefused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _columns(coupon: Coupon, attempt: Attempt, **values) -> dict:
    """The new redemption row's columns (the hot path inserts them without an ORM object)."""
    return dict(coupon_id=coupon.id, campaign_id=coupon.campaign_id, user_id=attempt.user.id,
                subscription_id=attempt.subscription_id, invoice_id=attempt.invoice_id,
                tier=attempt.tier, billing_cycle=attempt.billing_cycle, original_amount=attempt.amount,
                ip_address=attempt.ip_address, user_agent=(attempt.user_agent or None) and attempt.user_agent[:500],
                device_fingerprint=attempt.device_fingerprint, created_at=attempt.at,
                is_test=testmode.is_test_row(attempt), **values)


def _row(coupon: Coupon, attempt: Attempt, **values) -> Redemption:
    return Redemption(**_columns(coupon, attempt, **values))


def _failed(session, coupon: Coupon, attempt: Attempt, code: str, reason: str) -> Redemption:
    row = _row(coupon, attempt, status="failed", failure_code=code, failure_reason=reason,
               discount_amount=ZERO, final_amount=attempt.amount)
    session.add(row)
    session.flush()
    return row


def _upsert(session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _claim_user_use(session, coupon: Coupon, attempt: Attempt) -> None:
    """Take one of the customer's uses of the coupon, or refuse (racing attempts of one user
    queue here)."""
    if session.execute(hot.claim_statement(_upsert(session)), hot.claim_params(coupon, attempt)).first() is None:
        raise LimitRefused("per_user_limit_reached")


def _claim_shared(session, coupon: Coupon, attempt: Attempt, cost) -> None:
    """Take one use of the coupon and `cost` of its campaign's budget, or refuse. These rows are
    shared by every redeemer, so they are taken last: their locks are held only until commit."""
    uses = Coupon.test_uses_count if attempt.is_test else Coupon.uses_count
    with testmode.test_lane():  # a test redemption moves only the test-lane counters
        _take_shared(session, coupon, attempt, cost, uses)


def _take_shared(session, coupon: Coupon, attempt: Attempt, cost, uses) -> None:
    # Test traffic is bookkeeping on a production coupon, not an edit of it: updated_at stays.
    kept = {"updated_at": Coupon.updated_at} if attempt.is_test else {}
    taken = session.execute(
        update(Coupon).where(Coupon.id == coupon.id, hot.uses_left(uses))
        .values({uses: uses + 1, **kept}).returning(uses).execution_options(synchronize_session=False)).first()
    if taken is None:
        raise LimitRefused("max_uses_reached")
    if coupon.campaign_id is not None:
        spent = Campaign.test_spent if attempt.is_test else Campaign.spent
        kept = {"updated_at": Campaign.updated_at} if attempt.is_test else {}
        charged = session.execute(
            update(Campaign).where(Campaign.id == coupon.campaign_id, hot.budget_left(spent, cost))
            .values({spent: spent + cost, **kept}).returning(spent).execution_options(synchronize_session=False)).first()
        if charged is None:
            raise LimitRefused("campaign_budget_exhausted")


def _succeed(session, coupon: Coupon, attempt: Attempt, benefit: Benefit, applied_by,
             findings: list[fraud.Finding]) -> Redemption:
    columns = _columns(coupon, attempt, status="success", discount_amount=benefit.discount,
                       final_amount=benefit.final_amount, credits_granted=benefit.credits,
                       months_granted=benefit.months, budget_cost=benefit.budget_cost,
                       applied_by_id=getattr(applied_by, "id", None))
    if hot.applies(session, attempt, benefit, findings):
        return _succeed_in_one_statement(session, coupon, attempt, columns)
    row = Redemption(**columns)
    try:
        with session.begin_nested():
            _claim_user_use(session, coupon, attempt)
            session.add(row)
            session.flush()
            benefits.apply(session, row, attempt, actor=applied_by)
            fraud.record(session, findings, coupon, attempt, row)
            _claim_shared(session, coupon, attempt, row.budget_cost)  # an invoice may have capped it
    except LimitRefused as refused:
        row = _failed(session, coupon, attempt, refused.code, MESSAGES[refused.code])
        fraud.record(session, findings, coupon, attempt, row)
    _expire_counters(session, coupon)
    return row


def _succeed_in_one_statement(session, coupon: Coupon, attempt: Attempt, columns: dict):
    """Live traffic on PostgreSQL with nothing to give but the answer: the customer's own use
    first (their row, not shared), then the coupon's use, the campaign's budget and the
    redemption row in one statement (hot.py); the caller's commit follows. A refusal gives
    the customer's use back and records the failed attempt, as the savepoint path does."""
    uses = hot.claim_user_use(session, coupon, attempt)
    if uses is None:
        row = _failed(session, coupon, attempt, "per_user_limit_reached", MESSAGES["per_user_limit_reached"])
    else:
        row, refused = hot.take_and_insert(session, coupon, columns)
        if refused is not None:
            _give_back_user_use(session, coupon, attempt, uses)
            row = _failed(session, coupon, attempt, refused, MESSAGES[refused])
    _expire_counters(session, coupon)
    return row


def _give_back_user_use(session, coupon: Coupon, attempt: Attempt, uses: int) -> None:
    table = CouponUserUse.__table__
    where = (table.c.coupon_id == coupon.id, table.c.user_id == attempt.user.id)
    if uses == 1:  # the row was made for this attempt: as if it never was (as a savepoint rollback)
        session.execute(delete(table).where(*where))
    else:
        session.execute(update(table).where(*where).values(uses=table.c.uses - 1))


def _expire_counters(session, coupon) -> None:
    """The counters just moved: an ORM coupon (and campaign) re-reads them when next read. The
    API's coupon is a snapshot (snapshot.py): then only an ORM copy the session holds, if the
    request made a session at all."""
    if not isinstance(coupon, Coupon):
        if pg.session_made(session):  # (without a read: an expired copy would be refreshed first)
            for model, key, names in ((Coupon, coupon.id, ["uses_count", "test_uses_count"]),
                                      (Campaign, coupon.campaign_id, ["spent", "test_spent"])):
                held = session.identity_map.get(identity_key(model, key)) if key is not None else None
                if held is not None:
                    session.expire(held, names)
        return
    session.expire(coupon, ["uses_count", "test_uses_count"])
    if coupon.campaign is not None:
        session.expire(coupon.campaign, ["spent", "test_spent"])


def redeem(session, coupon: Coupon, attempt: Attempt, *, applied_by=None,
           detectors: tuple[str, ...] | None = None) -> Redemption:
    """Record one attempt: validation, then fraud checks (only a valid attempt is scored: an expired
    code is `expired`, whoever sends it), then the atomic take. The caller commits."""
    result = validation.check(session, coupon, attempt)
    if not result.valid:
        return _failed(session, coupon, attempt, result.code, result.message)
    findings = fraud.detect(session, coupon, attempt, only=detectors)
    blocking = next((f for f in findings if f.blocks), None)
    if blocking is None:
        return _succeed(session, coupon, attempt, result.benefit, applied_by, findings)
    row = _failed(session, coupon, attempt, "fraud_blocked", blocking.reason)
    fraud.record(session, findings, coupon, attempt, row)
    return row


def public_message(row: Redemption) -> str | None:
    """What the customer may read: fraud reasons stay internal."""
    if row.failure_code == "fraud_blocked":
        return MESSAGES["fraud_blocked"]
    return row.failure_reason


def reverse(session, actor, row: Redemption, reason: str) -> Redemption:
    """Undo a success: the use and the budget go back, unspent bonus credits are removed."""
    reason = require_reason(reason)
    if row.status not in ("success", "pending"):
        raise DomainError("not_reversible", f"A {row.status} redemption cannot be reversed.", "status", status=409)
    before = {"status": row.status, "budget_cost": str(row.budget_cost), "credits_granted": row.credits_granted}
    benefits.revert(session, row, actor=actor)  # the customer's rows first, the shared ones last (as redeem)
    uses = Coupon.test_uses_count if row.is_test else Coupon.uses_count
    with testmode.test_lane():
        kept = {"updated_at": Coupon.updated_at} if row.is_test else {}
        session.execute(update(Coupon).where(Coupon.id == row.coupon_id, uses > 0).values({uses: uses - 1, **kept})
                        .execution_options(synchronize_session=False))
        if row.campaign_id is not None and row.budget_cost > 0:
            spent = Campaign.test_spent if row.is_test else Campaign.spent
            session.execute(update(Campaign).where(Campaign.id == row.campaign_id, spent >= row.budget_cost)
                            .values({spent: spent - row.budget_cost, **({"updated_at": Campaign.updated_at}
                                                                        if row.is_test else {})})
                            .execution_options(synchronize_session=False))
    row.status, row.reversed_at = "reversed", clock.now()
    row.reversed_by_id, row.reversal_reason = getattr(actor, "id", None), reason
    session.expire(row.coupon, ["uses_count", "test_uses_count"])
    if row.coupon.campaign is not None:
        session.expire(row.coupon.campaign, ["spent", "test_spent"])
    session.flush()
    audit.record(session, "coupons.redemption_reversed", actor=actor, target=row, target_type="coupon_redemption",
                 before=before, after={"status": "reversed", "credits_clawed_back": row.credits_clawed_back},
                 reason=reason)
    return row


def get(session, redemption_id: int) -> Redemption:
    row = session.get(Redemption, redemption_id)
    if row is None:
        raise NotFound("redemption")
    return row


def listing(*, coupon_id: int | None = None, campaign_id: int | None = None, user_id: int | None = None,
            include_test: bool = False):
    """Redemptions newest first (for keyset_page); production only unless asked."""
    stmt = select(Redemption)
    if coupon_id is not None:
        stmt = stmt.where(Redemption.coupon_id == coupon_id)
    if campaign_id is not None:
        stmt = stmt.where(Redemption.campaign_id == campaign_id)
    if user_id is not None:
        stmt = stmt.where(Redemption.user_id == user_id)
    if not include_test:
        stmt = stmt.where(Redemption.is_test.is_(False))
    return stmt


def successful_since(session, since, include_test: bool = False) -> int:
    """Redemptions that went through (and stand: reversed ones no longer count) since `since`."""
    stmt = select(func.count(Redemption.id)).where(Redemption.status == "success", Redemption.created_at >= since)
    if not include_test:
        stmt = stmt.where(Redemption.is_test.is_(False))
    return session.scalar(stmt) or 0


def for_subscription(session, subscription_id: int) -> list[Redemption]:
    return list(session.scalars(select(Redemption).where(Redemption.subscription_id == subscription_id)
                                .order_by(Redemption.created_at.desc(), Redemption.id.desc()).limit(20)))


def apply_to_subscription(session, actor, sub, raw_code, reason: str, *, ip_address=None,
                          user_agent=None) -> Redemption:
    """Staff put a coupon on a customer's subscription (its open or next invoice, its
    paid-through date, or the customer's credits). Only the invoice-level fraud check runs:
    velocity and the like describe customers, not staff."""
    from app.coupons import coupons, validation

    reason = require_reason(reason)
    coupon = coupons.by_code(session, raw_code)
    price = sub.tier.price_for(sub.billing_cycle)
    attempt = validation.build_attempt(session, coupon, sub.user, {"amount": str(price), "subscription_id": sub.id},
                                       is_test=testmode.is_test_row(sub), ip_address=ip_address, user_agent=user_agent)
    row = redeem(session, coupon, attempt, applied_by=actor, detectors=("stacking_abuse",))
    audit.record(session, "coupons.applied_to_subscription", actor=actor, target=sub, target_type="subscription",
                 after={"code": coupon.code, "redemption": row.id, "status": row.status,
                        "failure_code": row.failure_code, "discount": str(row.discount_amount)},
                 reason=reason, is_test=testmode.is_test_row(sub))
    return row
