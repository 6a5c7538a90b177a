"""Navigation registry: each domain adds its screens; the bar shows only what the user may open."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import has_request_context, request, url_for


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: str | None
    order: int
    count: Callable[[], int] | None = None  # a badge beside the label (pending approvals)


_ITEMS: dict[str, NavItem] = {}


def register(label: str, endpoint: str, permission: str | None, order: int = 50,
             count: Callable[[], int] | None = None) -> None:
    _ITEMS[endpoint] = NavItem(label, endpoint, permission, order, count)


# The bar's groups, in order; a screen's group follows from its blueprint (the prefix of its endpoint).
GROUPS = ("Customers", "Billing", "Licensing", "Coupons", "Credits", "Access", "Test data", "Operations")
_GROUP_OF = {"users": "Customers", "billing": "Billing", "billing_admin": "Billing", "licensing": "Licensing",
             "coupons": "Coupons", "campaigns": "Coupons", "coupon_fraud": "Coupons", "credits": "Credits",
             "credits_pricing": "Credits", "rbac": "Access", "api_keys": "Access", "oauth_clients": "Access",
             "testdata": "Test data", "testdata_overview": "Test data", "notifications": "Operations",
             "ops": "Operations", "approvals": "Operations"}


def group_of(endpoint: str) -> str:
    return _GROUP_OF.get(endpoint.split(".", 1)[0], "Operations")


def visible_groups(can: Callable[[str], bool]) -> list[dict]:
    """The visible items by group, groups in GROUPS order (empty groups left out)."""
    items = visible_items(can)
    by_group: dict[str, list[dict]] = {}
    for item in items:
        by_group.setdefault(item["group"], []).append(item)
    return [{"label": g, "items": by_group[g], "current": any(i["current"] for i in by_group[g])}
            for g in GROUPS if g in by_group]


def visible_items(can: Callable[[str], bool]) -> list[dict]:
    """The items the user may open (`can` answers for a permission: auth's check, passed in since
    core imports no domain); `current` marks the longest one the page's path starts with."""
    shown = [i for i in sorted(_ITEMS.values(), key=lambda i: (i.order, i.label))
             if i.permission is None or can(i.permission)]
    items = [{"label": i.label, "url": url_for(i.endpoint), "current": False, "group": group_of(i.endpoint),
              "count": i.count() if i.count else None} for i in shown]
    path = request.path if has_request_context() else ""
    matches = [i for i in items if path == i["url"] or path.startswith(i["url"].rstrip("/") + "/")]
    if matches:
        max(matches, key=lambda i: len(i["url"]))["current"] = True
    return items
