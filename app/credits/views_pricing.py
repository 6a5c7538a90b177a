"""Pricing screens: providers, versioned model prices, margins per tier, the margin audit log
and the price calculator (live as you type). Inline edits swap one table (HTMX); every form
also works as a plain POST.

Seeing prices and margins needs analytics.view_revenue (margins are revenue data). Changing
them changes what every request costs, so it needs credits.deduct as well (the catalogue's
admin-level credit permission: admin and super_admin) and sudo mode; every change is audited.
"""
from __future__ import annotations

from datetime import timezone

from flask import Blueprint, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from app.auth.guards import permission_required, sudo_required, user_can
from app.core import nav
from app.core.errors import DomainError
from app.core.forms import handle_form
from app.core.web import is_fragment_request, render
from app.credits import margins, metering
from app.credits import pricing as prices
from app.credits.formula import six
from app.credits.forms import (CalculatorForm, MarginForm, NewModelForm, NewProviderForm, PriceForm, ProviderForm,
                               provider_choices)
from app.credits.models import TIERS
from app.extensions import db

bp = Blueprint("credits_pricing", __name__, url_prefix="/admin/credits/pricing")
nav.register("Pricing", "credits_pricing.pricing", "analytics.view_revenue", order=41)
VIEW = "analytics.view_revenue"
CHANGE = ("credits.deduct", "analytics.view_revenue")
PARTS = {"providers", "prices", "calculator"}


def _may_change() -> bool:
    return all(user_can(p) for p in CHANGE)


def _utc(value):
    return value.replace(tzinfo=timezone.utc) if value is not None else None


def _calculator(session):
    form = CalculatorForm(request.args)
    form.model.choices = [SelectChoice(m) for m in prices.model_names(session)]
    result, error = None, None
    if "model" in request.args:
        if form.validate():
            try:
                q = metering.estimate(session, None, form.model.data, form.input_tokens.data, form.output_tokens.data,
                                      tier=form.tier.data, month_tokens=form.month_tokens.data or 0)
                result = {"vendor_cost": six(q.vendor_cost), "margin": f"{q.margin:.2f}",
                          "customer_cost": six(q.customer_cost), "credits": q.credits}
            except DomainError as failure:
                error = failure.message
        else:
            error = "; ".join(f"{form[name].label.text}: {msgs[0]}" for name, msgs in form.errors.items())
    return form, result, error


def _pricing_page(status: int = 200, block: str | None = None, **forms):
    session = db.session
    calc_form, calc_result, calc_error = _calculator(session)
    new_model = forms.get("new_model") or NewModelForm()
    new_model.provider_id.choices = provider_choices(prices.providers(session))
    history = request.args.get("history")
    return render("credits/pricing.html", block=block, status=status, providers=prices.providers(session),
                  prices=prices.current_prices(session), edit_provider=forms.get("edit_provider"),
                  provider_form=forms.get("provider_form"), edit_model=forms.get("edit_model"),
                  price_form=forms.get("price_form") or PriceForm(), new_model=new_model,
                  new_provider=forms.get("new_provider") or NewProviderForm(), history=history,
                  history_rows=prices.price_history(session, history) if history else [],
                  calc_form=calc_form, calc_result=calc_result, calc_error=calc_error,
                  notice=forms.get("notice"), may_change=_may_change())


@bp.get("/")
@permission_required(VIEW)
def pricing():
    part = request.args.get("part")
    edit = request.args.get("edit_provider", "")
    forms = {}
    if edit.isdigit():
        provider = db.session.get(prices.Provider, int(edit))
        if provider is not None:
            forms["edit_provider"] = provider.id
            forms["provider_form"] = ProviderForm(obj=provider)
    if request.args.get("edit_model"):
        forms["edit_model"] = request.args["edit_model"]
    return _pricing_page(block=part if part in PARTS else None, **forms)


def _save(part: str, form, act, message, form_key: str, **context):
    """A pricing form through handle_form: HTMX swaps the table `part`, a plain POST goes back to the page."""
    return handle_form(form, act, success=url_for("credits_pricing.pricing"), message=message,
                       fragment=lambda result, text: _pricing_page(block=part, notice=text),
                       again=lambda form, status: _pricing_page(status=status,
                                                                block=part if is_fragment_request() else None,
                                                                **{form_key: form}, **context))


@bp.post("/providers/<int:provider_id>")
@permission_required(*CHANGE)
@sudo_required
def update_provider(provider_id: int):
    form = ProviderForm()
    return _save("providers", form, lambda: prices.update_provider(
        db.session, current_user, provider_id, form.display_name.data, form.api_endpoint.data, form.is_active.data,
        form.reason.data), lambda provider: f"Saved {provider.display_name}.", "provider_form",
        edit_provider=provider_id)


@bp.post("/providers")
@permission_required(*CHANGE)
@sudo_required
def create_provider():
    form = NewProviderForm()
    return _save("providers", form, lambda: prices.create_provider(
        db.session, current_user, form.vendor_name.data, form.display_name.data, form.api_endpoint.data,
        form.reason.data), lambda provider: f"Added {provider.display_name}.", "new_provider")


@bp.post("/models/<path:model_name>/prices")
@permission_required(*CHANGE)
@sudo_required
def add_price(model_name: str):
    form = PriceForm()
    return _save("prices", form, lambda: prices.add_price(
        db.session, current_user, model_name, form.input_price.data, form.output_price.data, form.reason.data,
        _utc(form.effective_at.data)),
        lambda price: f"New price for {price.model_name} from {price.effective_date:%Y-%m-%d %H:%M} UTC.",
        "price_form", edit_model=model_name)


@bp.post("/models")
@permission_required(*CHANGE)
@sudo_required
def add_model():
    form = NewModelForm()
    form.provider_id.choices = provider_choices(prices.providers(db.session))
    return _save("prices", form, lambda: prices.add_price(
        db.session, current_user, form.model_name.data, form.input_price.data, form.output_price.data,
        form.reason.data, _utc(form.effective_at.data), provider_id=form.provider_id.data),
        lambda price: f"Added {price.model_name}.", "new_model")


# ---- margins -------------------------------------------------------------------------------

def _margins_page(status: int = 200, block: str | None = None, edit_tier: str | None = None, form=None,
                  notice: str | None = None):
    session = db.session
    tiers = margins.overview(session)
    if edit_tier and form is None:
        current = next((t["current"] for t in tiers if t["tier"] == edit_tier), None)
        form = MarginForm(data=_margin_data(current))
    history = request.args.get("history")
    return render("credits/margins.html", block=block, status=status, tiers=tiers, edit_tier=edit_tier, form=form,
                  notice=notice, history=history, history_rows=margins.history(session, history) if history else [],
                  log=margins.audit_log(session), may_change=_may_change())


def _margin_data(config) -> dict:
    if config is None:
        return {}
    return {"strategy": config.strategy, "margin_percentage": str(config.margin_percentage),
            "brackets": "\n".join(f"{b['min_tokens']}: {b['margin']}" for b in config.brackets or []),
            "vendor_adjustments": "\n".join(f"{k}: {v}" for k, v in (config.vendor_adjustments or {}).items())}


@bp.get("/margins")
@permission_required(VIEW)
def margins_page():
    tier = request.args.get("edit_tier")
    return _margins_page(block="margins" if request.args.get("part") == "margins" else None,
                         edit_tier=tier if tier in TIERS else None)


@bp.post("/margins/<tier>")
@permission_required(*CHANGE)
@sudo_required
def set_margin(tier: str):
    form = MarginForm()
    return handle_form(form, lambda: margins.set_margin(
        db.session, current_user, tier, form.strategy.data, form.margin_percentage.data or None, form.reason.data,
        brackets=margins.parse_pairs(form.brackets.data, "brackets"),
        adjustments=margins.parse_pairs(form.vendor_adjustments.data, "vendor_adjustments"),
        effective_date=_utc(form.effective_at.data)),
        success=url_for("credits_pricing.margins_page"), message=f"New {tier} margin saved.",
        fragment=lambda result, text: _margins_page(block="margins", notice=text),
        again=lambda form, status: _margins_page(status=status, block="margins" if is_fragment_request() else None,
                                                 edit_tier=tier, form=form))
