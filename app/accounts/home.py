"""The customer's own page /account/: plan, balance and the sign-out buttons (more in overview.py)."""
from __future__ import annotations

from app.accounts.forms import ConfirmForm
from app.accounts.guards import current_customer, customer_required
from app.accounts.overview import overview
from app.accounts.views import bp
from app.core.web import render
from app.extensions import db


@bp.get("/")
@customer_required
def home():
    user = current_customer()
    return render("accounts/home.html", user=user, form=ConfirmForm(), **overview(db.session, user))
