"""Global search for the top bar: one box for everything support is told over the phone.

The term is classified first, so each kind runs only the indexed lookups it can match: a Stripe
id looks in the Stripe columns, an invoice number or a number in ids, a license key or coupon
code by prefix on their unique indexes, anything else in customers' email and name (a trigram
index on PostgreSQL keeps the substring match fast at 100,000 customers; see bench/search.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import url_for
from sqlalchemy import func, literal_column, or_, select

from app.billing.models import Invoice, PaymentTransaction, Subscription
from app.core.errors import DomainError
from app.core.money import usd
from app.core.labels import label
from app.coupons.models import Coupon
from app.licensing.models import License
from app.users.models import User

MAX_LENGTH = 200
PER_GROUP = 8
PROBE = 200  # matches read unordered before walking the newest customers instead
GROUPS = ("Customers", "Invoices", "Payments", "Licenses", "Coupons")
_STRIPE = re.compile(r"^(cus|pi|ch|re|pm|in|sub)_[A-Za-z0-9]+$")
_INVOICE = re.compile(r"^inv-?0*(\d{1,18})$", re.IGNORECASE)
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,63}$")


@dataclass
class Hit:
    label: str
    detail: str
    url: str
    is_test: bool = False


@dataclass
class Results:
    q: str
    groups: dict[str, list[Hit]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.groups.values())


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _customer_hit(u: User, why: str = "") -> Hit:
    who = url_for("users.detail", user_id=u.id) if u.is_staff else url_for("customers.detail", user_id=u.id)
    detail = ", ".join(p for p in (u.full_name if u.full_name != u.email else "", f"#{u.id}",
                                   "staff" if u.is_staff else "", why) if p)
    return Hit(u.email, detail, who, u.is_test)


def _add(results: Results, group: str, hit: Hit) -> None:
    hits = results.groups.setdefault(group, [])
    if len(hits) < PER_GROUP and all(h.url != hit.url for h in hits):
        hits.append(hit)


def _by_customer_ids(session, ids, why: str, results: Results) -> None:
    ids = [i for i in ids if i is not None]
    if ids:
        for u in session.scalars(select(User).where(User.id.in_(ids), User.deleted_at.is_(None))):
            _add(results, "Customers", _customer_hit(u, why))


def _stripe(session, term: str, results: Results) -> None:
    prefix = term.split("_", 1)[0]
    if prefix == "cus":
        _by_customer_ids(session, session.scalars(select(Subscription.user_id)
                                                  .where(Subscription.stripe_customer_id == term).limit(PER_GROUP)),
                         f"Stripe customer {term}", results)
        return
    column = {"pi": PaymentTransaction.stripe_payment_intent_id, "ch": PaymentTransaction.stripe_charge_id,
              "re": PaymentTransaction.stripe_refund_id}.get(prefix)
    if column is None:
        return
    for p in session.scalars(select(PaymentTransaction).where(column == term).limit(PER_GROUP)):
        owner = session.get(User, p.user_id)
        _add(results, "Payments", Hit(f"{'Refund' if p.kind == 'refund' else 'Payment'} {p.id}: {term}",
                                      f"{owner.email if owner else p.user_id}, {usd(p.amount) if p.currency == 'usd' else f'{p.amount} {p.currency.upper()}'}, {p.status}",
                                      url_for("customers.detail", user_id=p.user_id, section="payments"), p.is_test))
        if owner is not None:
            _add(results, "Customers", _customer_hit(owner, f"{prefix}_ {term}"))


def _invoice(session, invoice_id: int, results: Results) -> None:
    inv = session.get(Invoice, invoice_id)
    if inv is not None:
        owner = session.get(User, inv.user_id)
        _add(results, "Invoices", Hit(inv.number, f"{owner.email if owner else inv.user_id}, {usd(inv.total)}, {label(inv.status)}",
                                      url_for("customers.invoice", user_id=inv.user_id, invoice_id=inv.id), inv.is_test))


def _codes(session, term: str, results: Results) -> None:
    """License keys and coupon codes are stored upper-case: a prefix walk of their unique index."""
    upper = _like_escape(term.upper()) + "%"
    for lic in session.scalars(select(License).where(License.license_key.like(upper, escape="\\"))
                               .order_by(License.license_key).limit(PER_GROUP)):
        _add(results, "Licenses", Hit(lic.license_key, f"{lic.owner.email}, {lic.status}",
                                      url_for("customers.detail", user_id=lic.user_id, section="licenses"), lic.is_test))
    for c in session.scalars(select(Coupon).where(Coupon.code.like(upper, escape="\\"))
                             .order_by(Coupon.code).limit(PER_GROUP)):
        _add(results, "Coupons", Hit(c.code, f"{c.discount_type.replace('_', ' ')} {c.discount_value}"
                                             f"{'' if c.is_active else ', inactive'}",
                                     url_for("coupons.detail", coupon_id=c.id)))


def name_expression():
    """The indexed form of a person's name (migration 0015_console: a trigram index on PostgreSQL)."""
    return func.lower(User.first_name + literal_column("' '") + User.last_name)


def _people(session, term: str, results: Results) -> None:
    """The exact email first (emails are stored lower-case), then emails or names containing the
    term, newest first. External id when the column exists.

    Rare terms are found through the trigram indexes (a bounded, unordered probe, sorted here);
    a term matching hundreds of rows is answered by walking the newest customers instead, which
    finds eight matches at once. Planners choose badly between the two on their own estimates.
    """
    lowered = term.lower()
    exact = session.scalar(select(User).where(User.email == lowered, User.deleted_at.is_(None)))
    if exact is not None:
        _add(results, "Customers", _customer_hit(exact))
    if len(lowered) < 3:  # no trigram to look up: an email prefix on the unique index
        condition = User.email.like(_like_escape(lowered) + "%", escape="\\")
    else:
        pattern = "%" + _like_escape(lowered) + "%"
        condition = or_(User.email.like(pattern, escape="\\"), name_expression().like(pattern, escape="\\"))
    external = getattr(User, "external_id", None)
    if external is not None:
        condition = or_(condition, external == term)
    live = (condition, User.deleted_at.is_(None))
    probe = list(session.scalars(select(User.id).where(*live).limit(PROBE + 1)))
    if len(probe) <= PROBE:
        ids = sorted(probe, reverse=True)[:PER_GROUP]
        found = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
        rows = [found[i] for i in ids]
    else:
        rows = session.scalars(select(User).where(*live).order_by(User.id.desc()).limit(PER_GROUP))
    for u in rows:
        _add(results, "Customers", _customer_hit(u))


def search(session, raw: str | None) -> Results:
    term = (raw or "").strip()
    if len(term) > MAX_LENGTH:
        raise DomainError("invalid_query", f"Search for at most {MAX_LENGTH} characters.", "q")
    results = Results(term)
    if len(term) < 2 and not term.isdigit():
        return results
    if _STRIPE.match(term):
        _stripe(session, term, results)
    invoice = _INVOICE.match(term)
    if invoice:
        _invoice(session, int(invoice.group(1)), results)
    if term.isdigit() and len(term) <= 18:
        _by_customer_ids(session, [int(term)], "customer id", results)
        _invoice(session, int(term), results)
    if _CODE.match(term) and not term.isdigit():
        _codes(session, term, results)
    if not (term.isdigit() or _STRIPE.match(term) or invoice):
        _people(session, term, results)
    results.groups = {g: results.groups[g] for g in GROUPS if results.groups.get(g)}
    return results
