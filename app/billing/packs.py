"""Credit packs (seed 004's token packages): staff define them; a user buys one (API) or
staff sell one from the user's billing page. A one-off PaymentIntent charges the card on
file, and the credits arrive as bonus credits only when it succeeds."""
from __future__ import annotations

from sqlalchemy import select

from app.billing import collection, invoices, subscriptions
from app.billing.invoices import Line
from app.billing.models import CreditPack, CreditPackPurchase
from app.core import audit, bounds, testmode
from app.core.audit import require_reason
from app.core.errors import Conflict, DomainError
from app.core.money import money, usd

MAX_PACK_CREDITS = 10_000_000

DEFAULT_PACKS = [("Starter 5,000", 5000, "20.00"), ("Builder 25,000", 25000, "90.00"),
                 ("Studio 100,000", 100000, "320.00")]


def all_packs(session, active_only: bool = False) -> list[CreditPack]:
    stmt = select(CreditPack).order_by(CreditPack.price, CreditPack.id)
    if active_only:
        stmt = stmt.where(CreditPack.is_active.is_(True))
    return list(session.scalars(stmt))


def get_pack(session, pack_id) -> CreditPack:
    row_id = bounds.parse_id(pack_id, "pack")
    pack = session.get(CreditPack, row_id) if row_id else None
    if pack is None:
        raise DomainError("resource_missing", "No such credit pack.", "pack", status=404)
    return pack


def _validate(session, name, credits, price, pack: CreditPack | None = None) -> tuple[str, int, object]:
    name = (name or "").strip()
    if not name:
        raise DomainError("required", "Give the pack a name.", "name")
    clash = session.scalar(select(CreditPack).where(CreditPack.name == name))
    if clash is not None and clash is not pack:
        raise DomainError("name_taken", "Another pack has that name.", "name")
    try:
        credits = int(str(credits).strip())
    except (TypeError, ValueError):
        raise DomainError("invalid_number", "Credits are a whole number.", "credits") from None
    if not 0 < credits <= MAX_PACK_CREDITS:
        raise DomainError("invalid_number", f"Credits go from 1 to {MAX_PACK_CREDITS:,}.", "credits")
    price = money(price, "price")
    if price <= 0:
        raise DomainError("invalid_amount", "A pack costs more than zero.", "price")
    return name, credits, price


def save_pack(session, actor, pack: CreditPack | None, *, name, credits, price, is_active: bool,
              reason: str) -> CreditPack:
    reason = require_reason(reason)
    name, credits, price = _validate(session, name, credits, price, pack)
    before = pack.snapshot() if pack else None
    if pack is None:
        pack = CreditPack(name=name, credits=credits, price=price, is_active=is_active)
        session.add(pack)
    else:
        pack.name, pack.credits, pack.price, pack.is_active = name, credits, price, is_active
    session.flush()
    audit.record(session, "billing.credit_pack_saved", actor=actor, target=pack, target_type="credit_pack",
                 before=before, after=pack.snapshot(), reason=reason, is_test=False)
    return pack


def ensure_default_packs(session) -> None:
    if session.scalar(select(CreditPack.id).limit(1)) is None:
        for name, credits, price in DEFAULT_PACKS:
            session.add(CreditPack(name=name, credits=credits, price=money(price)))
        session.flush()


def purchase(session, actor, user, pack_id, *, staff: bool) -> CreditPackPurchase:
    """Charge the card on file for a pack (commits); raises card_declined (402) when the
    charge fails, with the purchase recorded as failed and no credits granted."""
    pack = get_pack(session, pack_id)
    if not pack.is_active:
        raise DomainError("pack_unavailable", f"The {pack.name} pack is not on sale.", "pack")
    sub = subscriptions.live_subscription(session, user.id)
    if not collection.can_charge(sub):
        raise Conflict("no_payment_method", "There is no card on file to charge; add a payment method first.",
                       "payment_method")
    invoice = invoices.build(session, user_id=user.id, subscription=sub, kind="credit_pack",
                             lines=[Line("credit_pack", f"{pack.name}: {pack.credits:,} credits", pack.price)])
    row = CreditPackPurchase(pack_id=pack.id, pack=pack, user_id=user.id, invoice_id=invoice.id,
                             credits=pack.credits, price=pack.price, status="pending",
                             sold_by_id=actor.id if staff else None, is_test=testmode.is_test_row(sub))
    session.add(row)
    session.flush()
    audit.record(session, "billing.credit_pack_sold" if staff else "billing.credit_pack_bought", actor=actor,
                 target=row, target_type="credit_pack_purchase", target_label=f"{pack.name} for {user.email}",
                 after={"pack": pack.name, "credits": pack.credits, "price": str(pack.price),
                        "invoice": invoice.number}, is_test=testmode.is_test_row(sub))
    session.commit()
    payment = collection.collect(session, invoice, trigger="credit_pack", actor=actor)
    if payment.status == "failed":
        raise DomainError(payment.failure_code or "card_declined",
                          f"The charge of {usd(pack.price)} was declined ({payment.failure_message or 'card declined'}); "
                          "no credits were added.", "payment_method", status=402)
    return row


def purchases_for(session, user_id: int) -> list[CreditPackPurchase]:
    return list(session.scalars(select(CreditPackPurchase).where(CreditPackPurchase.user_id == user_id)
                                .order_by(CreditPackPurchase.created_at.desc(), CreditPackPurchase.id.desc())))
