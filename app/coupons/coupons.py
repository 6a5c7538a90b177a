"""Coupons: create, edit, (de)activate, look up by code, and bulk-generate codes for a campaign.

Codes are stored upper-case under a unique index, so 'bf2025-30off' and 'BF2025-30OFF'
are the same coupon. Generated codes use an alphabet without look-alikes (no 0/O, 1/I/L).
"""
from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from app.core import audit
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound
from app.coupons import inputs
from app.coupons.models import BILLING_CYCLES, COUPON_TYPES, DISCOUNT_TYPES, TIERS, Campaign, Coupon

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_BULK = 5000
MAX_MONTHS_FREE = 36
MAX_CREDITS = 10_000_000
# Coupon types whose name fixes the discount type; the others take any.
TYPE_IMPLIES = {"percentage_discount": "percentage", "fixed_amount_discount": "fixed_amount"}


def get(session, coupon_id: int) -> Coupon:
    coupon = session.get(Coupon, coupon_id)
    if coupon is None:
        raise NotFound("coupon")
    return coupon


def by_code(session, raw_code, field: str = "code") -> Coupon:
    code = inputs.normalise_code(raw_code, field)
    # one round trip: the campaign and the rules joined (unique(): a row per rule)
    coupon = session.execute(select(Coupon).where(Coupon.code == code)
                             .options(joinedload(Coupon.campaign), joinedload(Coupon.rules))).unique().scalar_one_or_none()
    if coupon is None:
        raise not_found(code, field)
    return coupon


def not_found(code: str, field: str = "code") -> DomainError:
    return DomainError("coupon_not_found", f"No coupon has the code {code}.", field, status=404)


def for_redeem(session, raw_code, user_id: int, field: str = "code"):
    """by_code() for the API's redeem, with the key's owner: (CouponSnapshot, Owner or None),
    read in one compiled statement without the ORM (snapshot.py)."""
    from app.coupons import snapshot

    code = inputs.normalise_code(raw_code, field)
    found = snapshot.for_redeem(session, code, user_id)
    if found is None:
        raise not_found(code, field)
    return found


def discount_value(discount_type: str, raw, field: str = "discount_value") -> Decimal:
    """The value's meaning and bounds depend on the discount type."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DomainError("parameter_missing", "Enter the discount value.", field)
    if discount_type == "percentage":
        value = inputs.money(raw, field)
        if value <= 0 or value > 100:
            raise DomainError("invalid_percentage", "A percentage discount is more than 0 and at most 100.", field)
        return value
    if discount_type == "fixed_amount":
        value = inputs.money(raw, field)
        if value <= 0:
            raise DomainError("invalid_amount", "A fixed discount must be a positive amount such as 25.00.", field)
        if value >= Decimal("100000000"):
            raise DomainError("invalid_amount", "The amount is too large.", field)
        return value
    if discount_type == "credits":
        return Decimal(inputs.whole(raw, field, minimum=1, maximum=MAX_CREDITS))
    return Decimal(inputs.whole(raw, field, minimum=1, maximum=MAX_MONTHS_FREE))


def parse(session, raw: dict, *, existing: Coupon | None = None, with_code: bool = True) -> dict:
    """Validate a coupon's fields; raises DomainError naming the field. Nothing is written."""
    discount_type = inputs.choice(raw.get("discount_type"), DISCOUNT_TYPES, "discount_type")
    values = {
        "description": inputs.text(raw.get("description"), "description", required=False, max_len=2000),
        "coupon_type": inputs.choice(raw.get("coupon_type"), COUPON_TYPES, "coupon_type"),
        "discount_type": discount_type,
        "discount_value": discount_value(discount_type, raw.get("discount_value")),
        "max_uses": inputs.optional_int(raw.get("max_uses"), "max_uses", minimum=1),
        "max_uses_per_user": inputs.optional_int(raw.get("max_uses_per_user"), "max_uses_per_user", minimum=1),
        "min_purchase_amount": inputs.amount(raw.get("min_purchase_amount") or "0", "min_purchase_amount"),
        "tier_eligibility": inputs.choices(raw.get("tier_eligibility"), TIERS, "tier_eligibility"),
        "billing_cycles": inputs.choices(raw.get("billing_cycles"), BILLING_CYCLES, "billing_cycles"),
        "valid_from": inputs.moment(raw.get("valid_from"), "valid_from"),
        "valid_until": inputs.moment(raw.get("valid_until"), "valid_until"),
        "is_active": inputs.flag(raw.get("is_active", True)),
        "is_stackable": inputs.flag(raw.get("is_stackable")),
        "requires_licensed_device": inputs.flag(raw.get("requires_licensed_device")),
    }
    if with_code:
        values["code"] = inputs.normalise_code(raw.get("code"))
    implied = TYPE_IMPLIES.get(values["coupon_type"])
    if implied is not None and implied != discount_type:
        raise DomainError("type_mismatch", f"A {values['coupon_type']} coupon takes a {implied} discount.",
                          "coupon_type")
    if values["valid_until"] <= values["valid_from"]:
        raise DomainError("window_reversed", "'Valid until' must be after 'valid from'.", "valid_until")
    campaign_raw = raw.get("campaign_id")
    values["campaign_id"] = None
    if campaign_raw not in (None, "", 0, "0"):
        campaign_id = inputs.whole(campaign_raw, "campaign_id", minimum=1)
        if session.get(Campaign, campaign_id) is None:
            raise DomainError("campaign_not_found", "No such campaign.", "campaign_id")
        values["campaign_id"] = campaign_id
    if existing is not None and values["max_uses"] is not None:
        used = max(existing.uses_count, existing.test_uses_count)
        if values["max_uses"] < used:
            raise DomainError("max_below_uses", f"The coupon has been used {used} times already.", "max_uses")
    return values


def _code_free(session, code: str, coupon_id: int | None = None) -> None:
    clash = session.scalar(select(Coupon.id).where(Coupon.code == code))
    if clash is not None and clash != coupon_id:
        raise DomainError("code_taken", f"The code {code} is taken (codes ignore case).", "code", status=409)


def create(session, actor, raw: dict) -> Coupon:
    values = parse(session, raw)
    _code_free(session, values["code"])
    coupon = Coupon(**values, created_by_id=getattr(actor, "id", None))
    try:
        with session.begin_nested():
            session.add(coupon)
            session.flush()
    except IntegrityError:  # a concurrent create won the unique index
        raise DomainError("code_taken", f"The code {values['code']} is taken.", "code", status=409) from None
    audit.record(session, "coupons.created", actor=actor, target=coupon, after=coupon.snapshot())
    return coupon


def update(session, actor, coupon: Coupon, raw: dict) -> Coupon:
    """Edit everything but the code (printed and handed out already) and the counters."""
    values = parse(session, raw, existing=coupon, with_code=False)
    before = coupon.snapshot()
    for key, value in values.items():
        setattr(coupon, key, value)
    session.flush()
    audit.record(session, "coupons.updated", actor=actor, target=coupon, before=before, after=coupon.snapshot(),
                 reason=(raw.get("reason") or None))
    return coupon


def set_active(session, actor, coupon: Coupon, active: bool, reason: str | None = None) -> Coupon:
    if coupon.is_active == active:
        return coupon
    coupon.is_active = active
    audit.record(session, "coupons.activated" if active else "coupons.deactivated", actor=actor, target=coupon,
                 before={"is_active": not active}, after={"is_active": active}, reason=reason or None)
    return coupon


def deactivate_many(session, actor, ids: list[int], reason: str | None) -> int:
    """Deactivate the ticked coupons at once (a leaked batch of codes), each audited with the reason;
    returns how many were active."""
    if not ids:
        raise DomainError("nothing_ticked", "Tick the coupons to deactivate.", "ids")
    reason = require_reason(reason, minimum=3)
    done = 0
    for coupon in session.scalars(select(Coupon).where(Coupon.id.in_(ids), Coupon.is_active.is_(True))):
        set_active(session, actor, coupon, False, reason)
        done += 1
    return done


def delete(session, actor, coupon: Coupon, reason: str | None) -> None:
    """Delete a coupon nobody ever redeemed (a mistake); one that was used stays for the records
    and is deactivated instead."""
    from app.coupons.models import Redemption

    reason = require_reason(reason, minimum=3)
    used = coupon.uses_count or coupon.test_uses_count or session.scalar(
        select(Redemption.id).where(Redemption.coupon_id == coupon.id).limit(1))
    if used:
        raise DomainError("coupon_used", f"{coupon.code} has redemptions: deactivate it instead.", "reason",
                          status=409)
    audit.record(session, "coupons.deleted", actor=actor, target=coupon, before=coupon.snapshot(), reason=reason)
    session.delete(coupon)


def search(session, q: str | None = None, campaign_id: int | None = None, active: bool | None = None):
    stmt = select(Coupon)
    if q:
        stmt = stmt.where(or_(Coupon.code.contains(q.strip().upper(), autoescape=True),
                              func.lower(Coupon.description).contains(q.strip().lower(), autoescape=True)))
    if campaign_id:
        stmt = stmt.where(Coupon.campaign_id == campaign_id)
    if active is not None:
        stmt = stmt.where(Coupon.is_active.is_(active))
    return stmt


def new_code(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def bulk_generate(session, actor, campaign: Campaign, raw: dict) -> list[Coupon]:
    """Create `count` single-purpose coupons sharing one template, each with a fresh code."""
    count = inputs.whole(raw.get("count"), "count", minimum=1, maximum=MAX_BULK)
    prefix = str(raw.get("prefix") or "").strip().upper()
    if prefix and not inputs.CODE_PATTERN.match(prefix + "AAA"):
        raise DomainError("invalid_prefix", "A prefix is letters, digits, '-' or '_'.", "prefix")
    length = inputs.whole(raw.get("length") or 8, "length", minimum=6, maximum=16)
    if len(prefix) + length > 40:
        raise DomainError("invalid_prefix", "Prefix and code together are at most 40 characters.", "prefix")
    template = parse(session, {**raw, "campaign_id": campaign.id}, with_code=False)
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {new_code(prefix, length) for _ in range(count - len(codes))}
        taken = set(session.scalars(select(Coupon.code).where(Coupon.code.in_(wanted))))
        codes |= wanted - taken
    created = [Coupon(code=code, created_by_id=getattr(actor, "id", None), **template) for code in sorted(codes)]
    session.add_all(created)
    session.flush()
    audit.record(session, "coupons.bulk_generated", actor=actor, target=campaign,
                 after={"count": count, "prefix": prefix, "length": length,
                        "discount_type": template["discount_type"],
                        "discount_value": str(template["discount_value"])})
    return created


def export_rows(session, campaign: Campaign):
    """Rows for the CSV export of a campaign's codes."""
    stmt = select(Coupon).where(Coupon.campaign_id == campaign.id).order_by(Coupon.code)
    for c in session.scalars(stmt).yield_per(500):
        yield [c.code, c.discount_type, str(c.discount_value), c.max_uses or "", c.max_uses_per_user or "",
               c.uses_count, c.valid_from.isoformat(), c.valid_until.isoformat(), "yes" if c.is_active else "no"]


EXPORT_HEADER = ["code", "discount_type", "discount_value", "max_uses", "max_uses_per_user", "uses",
                 "valid_from", "valid_until", "active"]
