"""What the customer page reads, section by section: each loader is one or two indexed queries
on the customer's id, so a section renders on its own (an HTMX tab) as fast as within the page."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select

from app.api.keys import keys_of
from app.api.models import ApiKey, OAuthClient
from app.billing.models import Invoice, PaymentTransaction, Subscription
from app.billing.subscriptions import live_subscription
from app.core.audit import AuditEntry
from app.core.errors import NotFound
from app.coupons.models import Redemption
from app.credits.balances import get_balance
from app.licensing.models import Activation, License
from app.sandbox import twins
from app.users.models import User

# (slug, label, permission needed to open it), in page order.
SECTIONS: list[tuple[str, str, str]] = [
    ("subscription", "Subscription", "subscriptions.view"),
    ("invoices", "Invoices", "subscriptions.view"),
    ("payments", "Payments", "subscriptions.view"),
    ("credits", "Credits", "credits.view_balance"),
    ("licenses", "Licenses", "licenses.view"),
    ("coupons", "Coupons", "coupons.view"),
    ("keys", "API keys", "users.view"),
    ("audit", "Audit trail", "roles.view_audit_log"),
]
SLUGS = {s[0] for s in SECTIONS}


@dataclass(frozen=True)
class Header:
    user: User
    subscription: Subscription | None
    balance: object
    twin: User | None
    twin_of: User | None


def get_customer(session, user_id: int) -> User:
    """Staff accounts have their own page (users.detail); deleted accounts have none."""
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None or user.is_staff:
        raise NotFound("customer")
    return user


def header(session, user: User) -> Header:
    twin_of = session.get(User, user.twin_of_id) if user.twin_of_id else None
    return Header(user, live_subscription(session, user.id), get_balance(session, user.id),
                  twins.twin_of(session, user), twin_of)


def subscriptions_of(session, user_id: int) -> list[Subscription]:
    return list(session.scalars(select(Subscription).where(Subscription.user_id == user_id)
                                .order_by(Subscription.created_at.desc(), Subscription.id.desc())))


def invoices_of(session, user_id: int, limit: int = 100) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.user_id == user_id)
                                .order_by(Invoice.created_at.desc(), Invoice.id.desc()).limit(limit)))


def invoice_of(session, user_id: int, invoice_id: int) -> Invoice:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.user_id != user_id:
        raise NotFound("invoice")
    return invoice


def payments_of(session, user_id: int, limit: int = 100) -> list[PaymentTransaction]:
    """Charges and refunds, newest first; a refund row names the charge it returns."""
    return list(session.scalars(select(PaymentTransaction).where(PaymentTransaction.user_id == user_id)
                                .order_by(PaymentTransaction.created_at.desc(), PaymentTransaction.id.desc())
                                .limit(limit)))


def licenses_of(session, user_id: int):
    """Each license with its devices (active first)."""
    licenses = list(session.scalars(select(License).where(License.user_id == user_id)
                                    .order_by(License.created_at.desc(), License.id.desc())))
    devices: dict[int, list] = {lic.id: [] for lic in licenses}
    if licenses:
        for act in session.scalars(select(Activation).where(Activation.license_id.in_(devices))
                                   .order_by(Activation.status, Activation.activated_at.desc())):
            devices[act.license_id].append(act)
    return [(lic, devices[lic.id]) for lic in licenses]


def redemptions_of(session, user_id: int, limit: int = 100):
    return list(session.scalars(select(Redemption).where(Redemption.user_id == user_id)
                                .order_by(Redemption.created_at.desc(), Redemption.id.desc()).limit(limit)))


def access_of(session, user_id: int):
    """API keys and OAuth clients the customer owns."""
    clients = list(session.scalars(select(OAuthClient).where(OAuthClient.user_id == user_id)
                                   .order_by(OAuthClient.created_at.desc())))
    return keys_of(session, user_id), clients


def audit_of(session, user: User, limit: int = 100) -> list[AuditEntry]:
    """Entries about the customer or about anything the customer owns (subscriptions, invoices,
    payments, licenses, API keys), newest first."""
    targets = [and_(AuditEntry.target_type == "users", AuditEntry.target_id == str(user.id))]
    # Writers name a target by its table or by its singular ("subscription"): both are matched.
    for names, model in ((("subscriptions", "subscription"), Subscription), (("invoices", "invoice"), Invoice),
                         (("payment_transactions", "payment_transaction"), PaymentTransaction),
                         (("licenses", "license"), License), (("api_keys", "api_key"), ApiKey)):
        ids = [str(i) for i in session.scalars(select(model.id).where(model.user_id == user.id).limit(500))]
        if ids:
            targets.append(and_(AuditEntry.target_type.in_(names), AuditEntry.target_id.in_(ids)))
    return list(session.scalars(select(AuditEntry).where(or_(*targets))
                                .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)))
