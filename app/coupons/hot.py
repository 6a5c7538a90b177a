"""A redemption of a hot coupon in one statement: the shared rows locked for as little as possible.

Every redeemer of a coupon updates the same coupon row (and its campaign's), so each holds
that row's lock from its counter update to its commit, and every other redeemer waits that
long. Each statement sent while holding it costs a round trip and a wait for the worker to
schedule the request again (under load, many milliseconds): with the coupon's update, the
campaign's, the savepoint's release, the Idempotency-Key answer and the commit, successes
queued at ~30/s (bench/coupon_redeem.py). Here, when nothing else has to happen after the
take (a live attempt on PostgreSQL, no credits, months or invoice to give, no fraud finding
to file), the coupon's use, the campaign's budget and the redemption row go in ONE statement
of data-modifying CTEs, sent last, after validation and fraud scoring; then only the
answer's store and the commit follow.

The conditions are the ones the two-statement path (redemption.py: test lane, SQLite, and
redemptions with benefits to give) uses; PostgreSQL re-checks them against the latest
committed row after waiting on its lock, so no limit is ever exceeded.
"""
from __future__ import annotations

from sqlalchemy import and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import make_transient_to_detached

from app.core import clock
from app.coupons.models import Campaign, Coupon, Redemption

_TABLE = Redemption.__table__


def uses_left(uses):
    """The coupon has a use left in this lane (uses: Coupon.uses_count or test_uses_count)."""
    return or_(Coupon.max_uses.is_(None), uses < Coupon.max_uses)


def budget_left(spent, cost):
    """The campaign can pay `cost` in this lane (spent: Campaign.spent or test_spent)."""
    return and_(spent < Campaign.budget_limit, spent + cost <= Campaign.budget_limit)


def applies(session, attempt, benefit, findings) -> bool:
    """Only the take and the row to write: live, PostgreSQL, nothing given by other services
    (an invoice could still cap the budget cost), no fraud finding to file with the row."""
    return (not attempt.is_test and not findings and not benefit.credits and not benefit.months
            and not (benefit.discount > 0 and attempt.subscription_id)
            and session.get_bind().dialect.name == "postgresql")


def _values(row: Redemption) -> dict:
    """Every column of the new row, Python defaults filled in (the ORM would at flush)."""
    values = {}
    for column in _TABLE.columns:
        if column.key == "id":
            continue
        value = getattr(row, column.key)
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
            setattr(row, column.key, value)
        values[column.key] = value
    return values


def take_and_insert(session, coupon: Coupon, row: Redemption) -> str | None:
    """Take the coupon's use and the campaign's budget and insert `row`, all or nothing; the row
    becomes a persistent object of the session without another query. Returns the failure
    code of a refusal (nothing taken, nothing written), or None."""
    now = clock.now()  # onupdate defaults are not applied inside a CTE: set updated_at as a flush would
    values = _values(row)
    taken = (update(Coupon).where(Coupon.id == coupon.id, uses_left(Coupon.uses_count))
             .values(uses_count=Coupon.uses_count + 1, updated_at=now).returning(Coupon.campaign_id).cte("taken"))
    ok = exists(select(taken.c.campaign_id))
    charged = None
    if coupon.campaign_id is not None:
        charged = (update(Campaign).where(Campaign.id.in_(select(taken.c.campaign_id)),
                                          budget_left(Campaign.spent, row.budget_cost))
                   .values(spent=Campaign.spent + row.budget_cost, updated_at=now).returning(Campaign.id)
                   .cte("charged"))
        ok = exists(select(charged.c.id))
    source = select(*[literal(v, type_=_TABLE.c[k].type).label(k) for k, v in values.items()]).where(ok)
    inserted = insert(_TABLE).from_select(list(values), source).returning(_TABLE.c.id).cte("inserted")
    got_use, new_id = session.execute(select(select(func.count()).select_from(taken).scalar_subquery(),
                                             select(inserted.c.id).scalar_subquery())).one()
    if new_id is None:
        if got_use:  # the use was taken but the budget refused: give the use back (its lock is ours)
            session.execute(update(Coupon).where(Coupon.id == coupon.id)
                            .values(uses_count=Coupon.uses_count - 1, updated_at=Coupon.updated_at)
                            .execution_options(synchronize_session=False))
        return "max_uses_reached" if not got_use else "campaign_budget_exhausted"
    row.id = new_id
    make_transient_to_detached(row)
    session.add(row)
    return None
