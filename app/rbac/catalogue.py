"""The permission catalogue and the six system roles of seed 001 (Plan 119).

The seed's counts disagree with its lists in places (support "12", analyst "8");
the listed permissions win, as DESIGN.md says.
"""
from __future__ import annotations

CATEGORIES: dict[str, list[str]] = {
    "subscriptions": ["subscriptions.view", "subscriptions.create", "subscriptions.edit",
                      "subscriptions.cancel", "subscriptions.reactivate", "subscriptions.refund"],
    "licenses": ["licenses.view", "licenses.create", "licenses.activate", "licenses.deactivate",
                 "licenses.suspend", "licenses.revoke"],
    "coupons": ["coupons.view", "coupons.create", "coupons.edit", "coupons.delete",
                "coupons.approve_redemption", "campaigns.create", "campaigns.set_budget"],
    "credits": ["credits.view_balance", "credits.view_history", "credits.grant", "credits.deduct",
                "credits.adjust_expiration"],
    "users": ["users.view", "users.edit_profile", "users.suspend", "users.unsuspend", "users.ban",
              "users.delete", "users.impersonate"],
    "roles": ["roles.view", "roles.create", "roles.edit", "roles.delete", "roles.assign",
              "roles.view_audit_log"],
    "analytics": ["analytics.view_dashboard", "analytics.view_revenue", "analytics.view_usage",
                  "analytics.export_data"],
}

ALL_PERMISSIONS: list[str] = [p for perms in CATEGORIES.values() for p in perms]


def category_of(permission: str) -> str:
    for category, perms in CATEGORIES.items():
        if permission in perms:
            return category
    raise KeyError(permission)


_ADMIN_EXCLUDED = {"users.impersonate", "roles.create", "roles.edit", "roles.delete"}

SYSTEM_ROLES: list[dict] = [
    {"name": "super_admin", "display_name": "Super Administrator", "hierarchy": 1,
     "description": "Platform owner with unrestricted access", "permissions": list(ALL_PERMISSIONS)},
    {"name": "admin", "display_name": "Administrator", "hierarchy": 2,
     "description": "Trusted operations lead with broad permissions",
     "permissions": [p for p in ALL_PERMISSIONS if p not in _ADMIN_EXCLUDED]},
    {"name": "ops", "display_name": "Operations", "hierarchy": 3,
     "description": "Day-to-day subscription and license management",
     "permissions": ["subscriptions.view", "subscriptions.create", "subscriptions.edit",
                     "subscriptions.cancel", "subscriptions.reactivate",
                     "licenses.view", "licenses.create", "licenses.activate", "licenses.deactivate",
                     "coupons.view", "coupons.create", "coupons.edit", "coupons.approve_redemption",
                     "campaigns.create",
                     "credits.view_balance", "credits.view_history", "credits.grant",
                     "users.view", "users.edit_profile", "users.suspend", "users.unsuspend",
                     "roles.view",
                     "analytics.view_dashboard", "analytics.view_revenue", "analytics.view_usage"]},
    {"name": "support", "display_name": "Customer Support", "hierarchy": 4,
     "description": "Customer support with read-mostly + limited credit grants",
     "permissions": ["subscriptions.view", "licenses.view", "coupons.view",
                     "credits.view_balance", "credits.view_history", "credits.grant",
                     "users.view", "users.unsuspend", "roles.view",
                     "analytics.view_dashboard", "analytics.view_usage"]},
    {"name": "analyst", "display_name": "Business Analyst", "hierarchy": 5,
     "description": "Business intelligence and reporting (read-only)",
     "permissions": ["subscriptions.view", "licenses.view", "coupons.view",
                     "credits.view_balance", "credits.view_history", "users.view", "roles.view",
                     "analytics.view_dashboard", "analytics.view_revenue", "analytics.view_usage",
                     "analytics.export_data"]},
    {"name": "auditor", "display_name": "Auditor", "hierarchy": 6,
     "description": "Compliance and audit trail review (read-only)",
     "permissions": ["subscriptions.view", "licenses.view", "roles.view", "roles.view_audit_log",
                     "analytics.view_dashboard"]},
]

# Per-transaction credit grant caps in USD, by role name (DESIGN.md §4); absent = no cap.
CREDIT_GRANT_CAP_USD = {"ops": 100, "support": 50}


def is_read_permission(name: str) -> bool:
    """Permissions that only show (view*, and exporting what one may view)."""
    return name.split(".", 1)[1].startswith("view") or name == "analytics.export_data"
