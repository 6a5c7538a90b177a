"""The admin home and the shared navigation."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for

from app.analytics import views as analytics_views
from app.auth.guards import staff_required, user_can, user_writes
from app.core import nav

bp = Blueprint("core", __name__)


@bp.app_context_processor
def _nav():
    return {"nav_items": nav.visible_items, "nav_groups": nav.visible_groups, "can": user_can, "can_ask": user_writes,
            "person_url": person_url}


def person_url(user) -> str:
    """Where a named person links to: a customer's page, or a staff member's user page."""
    if getattr(user, "is_staff", False):
        return url_for("users.detail", user_id=user.id)
    return url_for("customers.detail", user_id=user.id)


@bp.route("/")
def index():
    return redirect(url_for("core.dashboard"))


@bp.route("/admin")
@staff_required
def dashboard():
    """Home for every staff member: the analytics dashboard (its cards follow the viewer's permissions)."""
    return analytics_views.dashboard()
