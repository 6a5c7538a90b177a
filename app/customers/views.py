"""The customer page: a header (status, tier, balance, world, twin) and one URL per section
(/admin/customers/<id>/<section>); a tab click swaps only the section (HTMX) and pushes its URL."""
from __future__ import annotations

from flask import Blueprint, abort

from app.auth.guards import permission_required, user_can
from app.billing import history
from app.core.web import render
from app.credits import ledger
from app.customers import service
from app.extensions import db

bp = Blueprint("customers", __name__, url_prefix="/admin/customers")


def _section_context(slug: str, user) -> dict:
    session = db.session
    if slug == "subscription":
        subs = service.subscriptions_of(session, user.id)
        return {"subscriptions": subs, "timelines": {s.id: history.timeline(session, s) for s in subs[:3]}}
    if slug == "invoices":
        return {"invoices": service.invoices_of(session, user.id)}
    if slug == "payments":
        payments = service.payments_of(session, user.id)
        return {"payments": payments, "refunds_of": _refunds_by_charge(payments)}
    if slug == "credits":
        page = ledger.transactions(session, user.id, limit=25) if user_can("credits.view_history") else None
        return {"ledger": page}
    if slug == "licenses":
        return {"licenses": service.licenses_of(session, user.id)}
    if slug == "coupons":
        return {"redemptions": service.redemptions_of(session, user.id)}
    if slug == "keys":
        keys, clients = service.access_of(session, user.id)
        return {"keys": keys, "clients": clients}
    return {"entries": service.audit_of(session, user)}


def _refunds_by_charge(payments) -> dict[int, list]:
    out: dict[int, list] = {}
    for p in payments:
        if p.refund_of_id:
            out.setdefault(p.refund_of_id, []).append(p)
    return out


def page(user, section: str | None, status: int = 200, **extra):
    """The customer page with one section open; `extra` carries an action's error and typed values."""
    allowed = [s for s in service.SECTIONS if user_can(s[2])]
    if section is None:
        section = allowed[0][0] if allowed else None
    elif section not in service.SLUGS:
        abort(404, "No such section of the customer page.")
    elif not user_can({slug: perm for slug, _title, perm in service.SECTIONS}[section]):
        abort(403, "You may not open this section.")
    context = _section_context(section, user) if section else {}
    return render("customers/detail.html", block="section", status=status, head=service.header(db.session, user),
                  customer=user, sections=allowed, section=section, **context, **extra)


@bp.get("/<int:user_id>", defaults={"section": None})
@bp.get("/<int:user_id>/<section>")
@permission_required("users.view")
def detail(user_id: int, section: str | None):
    return page(service.get_customer(db.session, user_id), section)


@bp.get("/<int:user_id>/invoices/<int:invoice_id>")
@permission_required("users.view", "subscriptions.view")
def invoice(user_id: int, invoice_id: int):
    """A printable invoice: the document the customer received, with its lines and payments."""
    user = service.get_customer(db.session, user_id)
    inv = service.invoice_of(db.session, user.id, invoice_id)
    payments = [p for p in service.payments_of(db.session, user.id, limit=500) if p.invoice_id == inv.id]
    return render("customers/invoice.html", customer=user, invoice=inv, payments=payments)
