"""The admin dashboard (/admin, endpoint `analytics.dashboard`, which every screen links to as
home): the cards the viewer may see, then their roles and where to go. `/` leads here."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from app.analytics import empty, service
from app.auth.guards import staff_required, user_can
from app.core import nav
from app.core.web import include_test_data, render
from app.extensions import db
from app.rbac import service as rbac

# No url_prefix: the dashboard is /admin itself; the export lives under /admin/analytics.
bp = Blueprint("analytics", __name__)


@bp.route("/")
def index():
    return redirect(url_for("analytics.dashboard"))


@bp.route("/admin")
@staff_required
def dashboard():
    """Home for every staff member (its cards follow the viewer's permissions)."""
    include_test = include_test_data()
    board = service.dashboard(db.session, user_can, include_test=include_test)
    notice = empty.production_notice(db.session) if board.cards and not include_test else None
    return render("analytics/dashboard.html", board=board, empty_notice=notice,
                  assignments=rbac.active_assignments(db.session, current_user.id),
                  overrides=rbac.active_overrides(db.session, current_user.id),
                  perms=sorted(rbac.effective_permissions(db.session, current_user.id)),
                  links=nav.visible_items(user_can))
