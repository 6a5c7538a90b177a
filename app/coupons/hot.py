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

from types import SimpleNamespace

from sqlalchemy import Boolean, Integer, and_, bindparam, exists, false, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import make_transient_to_detached

from app.core import clock, pg, testmode
from app.coupons.models import Campaign, Coupon, CouponUserUse, Redemption

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
            and pg.bind_of(session).dialect.name == "postgresql")  # (bind_of: no Session made for it)


_DEFAULTS = [(column.key, column.default.arg if column.default is not None and column.default.is_scalar else None)
             for column in _TABLE.columns if column.key != "id"]


def _values(columns: dict) -> dict:
    """Every column of the new row, Python defaults filled in (the ORM would at flush): an ORM
    row made of them has each one set (an attribute left unset would be expired by
    make_transient_to_detached and reloaded, a round trip while the coupon's lock is held)."""
    values = {}
    for key, default in _DEFAULTS:
        value = columns.get(key)
        values[key] = default if value is None else value
    return values


class NewRedemption(SimpleNamespace):
    """A redemption row take_and_insert wrote for a request without a Session: its columns and
    id, for the answer (no ORM object, no Session made for it)."""


def claim_statement(insert):
    """The customer's use of the coupon (`insert`: the dialect's, for ON CONFLICT): their count
    after it, or no row when their limit (c_limit, null: none) is taken. Parameters c_coupon,
    c_user, c_test, c_limit."""
    table = CouponUserUse.__table__
    limit = bindparam("c_limit", type_=Integer)
    stmt = insert(table).values(coupon_id=bindparam("c_coupon"), user_id=bindparam("c_user"), uses=1,
                                is_test=bindparam("c_test"))
    return stmt.on_conflict_do_update(index_elements=[table.c.coupon_id, table.c.user_id],
                                      set_={"uses": table.c.uses + 1},
                                      where=or_(limit.is_(None), table.c.uses < limit)).returning(table.c.uses)


def claim_params(coupon: Coupon, attempt) -> dict:
    return {"c_coupon": coupon.id, "c_user": attempt.user.id, "c_test": testmode.is_test_row(attempt),
            "c_limit": coupon.max_uses_per_user}


_CLAIM = claim_statement(postgresql.insert)  # compiled once


def claim_user_use(session, coupon: Coupon, attempt) -> int | None:
    """Take one of the customer's uses of the coupon: their count after it, or None (refused)."""
    row = pg.run(session, _CLAIM, claim_params(coupon, attempt)).fetchone()
    return None if row is None else row[0]


_COLUMNS = [column.key for column in _TABLE.columns if column.key != "id"]


def _take_statement(campaign: bool):
    """The one statement (module docstring), built and compiled once: every value a bound
    parameter (coupon_id, cost, now, and the new row's columns as v_<column>). Its row:
    got_use (1: the coupon's use was taken, 0: none left), new_id (null: nothing written)."""
    # The production counters: never in test mode (the world guard cannot see a write inside a
    # CTE, so the statement carries its rule, as credits/charge.py does; applies() keeps test
    # attempts off this path in the first place).
    live = testmode.may_change_sql(false(), bindparam("test_mode", type_=Boolean))
    taken = (update(Coupon).where(Coupon.id == bindparam("coupon_id"), uses_left(Coupon.uses_count), live)
             .values(uses_count=Coupon.uses_count + 1, updated_at=bindparam("now"))
             .returning(Coupon.campaign_id).cte("taken"))
    ok = exists(select(taken.c.campaign_id))
    if campaign:
        cost = bindparam("cost", type_=Campaign.spent.type)
        charged = (update(Campaign).where(Campaign.id.in_(select(taken.c.campaign_id)),
                                          budget_left(Campaign.spent, cost))
                   .values(spent=Campaign.spent + cost, updated_at=bindparam("now")).returning(Campaign.id)
                   .cte("charged"))
        ok = exists(select(charged.c.id))
    source = select(*[bindparam(f"v_{k}", type_=_TABLE.c[k].type).label(k) for k in _COLUMNS]).where(ok)
    inserted = insert(_TABLE).from_select(_COLUMNS, source).returning(_TABLE.c.id).cte("inserted")
    return select(select(func.count()).select_from(taken).scalar_subquery().label("got_use"),
                  select(inserted.c.id).scalar_subquery().label("new_id"))


_TAKE = {True: _take_statement(campaign=True), False: _take_statement(campaign=False)}
_INSERT = insert(_TABLE).values({k: bindparam(f"v_{k}", type_=_TABLE.c[k].type) for k in _COLUMNS}).returning(_TABLE.c.id)


def insert_row(session, columns: dict) -> NewRedemption:
    """Insert a redemption row (a refused attempt's) without an ORM object: the row's values and id."""
    values = _values(columns)
    (new_id,) = pg.run(session, _INSERT, {f"v_{k}": v for k, v in values.items()}).fetchone()
    return NewRedemption(id=new_id, **values)


def take_and_insert(session, coupon: Coupon, columns: dict) -> tuple[Redemption | NewRedemption | None, str | None]:
    """Take the coupon's use and the campaign's budget and insert the row of `columns`, all or
    nothing. Returns (the new row, None): a persistent object of the session made without another
    query when the request has made its session, else a NewRedemption (none is made for it); or
    (None, the failure code of a refusal: nothing taken, nothing written)."""
    now = clock.now()  # onupdate defaults are not applied inside a CTE: set updated_at as a flush would
    values = _values(columns)
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(coupon_id=coupon.id, cost=values["budget_cost"], now=now, test_mode=testmode.active())
    got_use, new_id = pg.run(session, _TAKE[coupon.campaign_id is not None], params).fetchone()
    if new_id is None:
        if got_use:  # the use was taken but the budget refused: give the use back (its lock is ours)
            session.execute(update(Coupon).where(Coupon.id == coupon.id)
                            .values(uses_count=Coupon.uses_count - 1, updated_at=Coupon.updated_at)
                            .execution_options(synchronize_session=False))
        return None, "max_uses_reached" if not got_use else "campaign_budget_exhausted"
    pg.hot_lock_taken()  # the coupon's row is locked until the commit: that round trip does not yield
    if not pg.session_made(session):  # the API's plain redeem: the answer is all the row is for
        return NewRedemption(id=new_id, **values), None
    row = Redemption(id=new_id, **values)
    make_transient_to_detached(row)
    session.add(row)
    return row, None
