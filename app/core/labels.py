"""One table of human labels for the codes stored in rows (statuses, kinds, tiers, sources):
every screen shows `code | label`, so a code is worded once and the same everywhere."""
from __future__ import annotations

import re

LABELS: dict[str, str] = {
    # subscription and invoice statuses
    "active": "Active", "trial": "Trial", "past_due": "Past due", "grace_period": "Grace period",
    "cancelled": "Cancelled", "paused": "Paused", "expired": "Expired", "draft": "Draft", "open": "Open",
    "paid": "Paid", "void": "Void", "uncollectible": "Uncollectible",
    # payments
    "pending": "Pending", "succeeded": "Succeeded", "failed": "Failed", "refunded": "Refunded",
    "partially_refunded": "Partly refunded", "charge": "Charge", "refund": "Refund", "hard_decline": "Hard decline",
    # users and licenses
    "suspended": "Suspended", "banned": "Banned", "revoked": "Revoked", "deactivated": "Deactivated",
    "replaced": "Replaced", "standard": "Production", "test": "Test",
    # tiers
    "free": "Free", "pro": "Pro", "pro_plus": "Pro Plus", "pro_max": "Pro Max", "enterprise_pro": "Enterprise Pro",
    "enterprise_pro_plus": "Enterprise Pro Plus", "enterprise_max": "Enterprise Max", "perpetual": "Perpetual (BYOK)",
    # ledger kinds
    "allocation": "Allocation", "deduction": "Deduction", "subscription": "Subscription", "bonus": "Bonus",
    "coupon": "Coupon", "purchase": "Purchase", "staff_grant": "Staff grant", "grant": "Staff grant",
    "rollover": "Rollover", "usage": "Usage", "staff_deduction": "Staff deduction", "correction": "Correction",
    "api_usage": "API usage", "period": "Period", "proration": "Proration", "credit_pack": "Credit pack",
    # redemptions and coupon types
    "success": "Redeemed", "reversed": "Reversed", "percentage": "Percentage", "fixed_amount": "Fixed amount",
    "credits": "Credits", "months_free": "Months free",
    # key types
    "production": "Live", "sandbox": "Sandbox", "development": "Development",
    "monthly": "Monthly", "annual": "Annual",
    # fraud detections
    "ip_switching": "IP switching", "velocity_abuse": "Velocity abuse", "bot_pattern": "Bot pattern",
}


_CODE = re.compile(r"[a-z][a-z0-9]*(?:[_.][a-z0-9]+)*")


def words(value):
    """A value of unknown kind (a detail in an audit entry): a code gets its label, anything else
    (an email, an amount, a sentence) is shown as it is."""
    if isinstance(value, str) and _CODE.fullmatch(value) and ("_" in value or value in LABELS):
        return label(value)
    return value


def label(code) -> str:
    """The human label of a code; an unknown code reads as words ("bot_pattern" -> "Bot pattern")."""
    if code is None:
        return ""
    text = str(code)
    known = LABELS.get(text)
    if known is not None:
        return known
    words = text.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:]
