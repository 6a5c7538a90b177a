"""The admin home and the shared navigation."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from app.auth.guards import staff_required, user_can
from app.core import nav
from app.core.web import render
from app.extensions import db
from app.rbac import service as rbac

bp = Blueprint("core", __name__)


@bp.app_context_processor
def _nav():
    return {"nav_items": nav.visible_items, "can": user_can}


@bp.route("/")
def index():
    return redirect(url_for("core.dashboard"))


@bp.route("/admin")
@staff_required
def dashboard():
    assignments = rbac.active_assignments(db.session, current_user.id)
    overrides = rbac.active_overrides(db.session, current_user.id)
    perms = sorted(rbac.effective_permissions(db.session, current_user.id))
    return render("core/dashboard.html", assignments=assignments, overrides=overrides, perms=perms,
                  links=nav.visible_items())
