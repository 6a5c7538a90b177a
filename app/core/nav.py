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
    from app.auth.guards import user_can

    return [{"label": i.label, "url": url_for(i.endpoint)}
            for i in sorted(_ITEMS.values(), key=lambda i: (i.order, i.label))
            if i.permission is None or user_can(i.permission)]
