"""What every admin page's layout needs: the navigation the viewer may open, the permission checks
the templates ask (`can`, `can_ask`), and where a named person links to. Here, not in core:
the checks are auth's, and core imports no domain."""
from __future__ import annotations

from flask import Flask, url_for

from app.auth.guards import user_can, user_writes
from app.core import nav


def person_url(user) -> str:
    """Where a named person links to: a customer's page, or a staff member's user page."""
    if getattr(user, "is_staff", False):
        return url_for("users.detail", user_id=user.id)
    return url_for("customers.detail", user_id=user.id)


def _layout() -> dict:
    return {"nav_items": lambda: nav.visible_items(user_can), "nav_groups": lambda: nav.visible_groups(user_can),
            "can": user_can, "can_ask": user_writes, "person_url": person_url}


def init_app(app: Flask) -> None:
    app.context_processor(_layout)
