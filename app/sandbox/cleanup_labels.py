"""What people call the rows a cleanup deletes (table names are for developers)."""
from __future__ import annotations

LABELS = {
    "users": "Test accounts (customers and twins)",
    "api_keys": "API keys",
    "oauth_clients": "OAuth clients",
    "oauth_tokens": "OAuth tokens",
    "credit_balances": "Credit balances",
    "credit_ledger": "Credit ledger rows",
    "credit_allocations": "Credit allocations",
    "token_usage": "Usage records",
    "subscriptions": "Subscriptions",
    "invoices": "Invoices",
    "invoice_lines": "Invoice lines",
    "payment_transactions": "Payments",
    "coupon_redemptions": "Coupon redemptions",
    "coupon_user_uses": "Coupon uses per customer",
    "licenses": "Licenses",
    "license_activations": "Device activations",
    "role_assignments": "Role assignments",
    "permission_overrides": "Permission overrides",
    "recovery_codes": "Recovery codes",
    "job_records": "Job records",
    "test_clocks": "Test clocks",
}


def label(table: str) -> str:
    return LABELS.get(table) or table.replace("_", " ").capitalize()


def rows(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    """(table, label, count), largest first, for the preview and the summary alike."""
    return sorted(((t, label(t), n) for t, n in counts.items()), key=lambda r: (-r[2], r[1]))
