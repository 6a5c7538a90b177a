"""Navigation registry: each domain adds its screens; the bar shows only what the user may open."""
from __future__ import annotations

from dataclasses import dataclass

from flask import url_for


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: str | None
    order: int


_ITEMS: dict[str, NavItem] = {}


def register(label: str, endpoint: str, permission: str | None, order: int = 50) -> None:
    _ITEMS[endpoint] = NavItem(label, endpoint, permission, order)


def visible_items() -> list[dict]:
    """The items the user may open; `current` marks the longest one the page's path starts with."""
    from flask import has_request_context, request

    from app.auth.guards import user_can

    items = [{"label": i.label, "url": url_for(i.endpoint), "current": False}
             for i in sorted(_ITEMS.values(), key=lambda i: (i.order, i.label))
             if i.permission is None or user_can(i.permission)]
    path = request.path if has_request_context() else ""
    matches = [i for i in items if path == i["url"] or path.startswith(i["url"].rstrip("/") + "/")]
    if matches:
        max(matches, key=lambda i: len(i["url"]))["current"] = True
    return items
