"""Campaign screens: list, create, edit, the campaign page (chart and figures), bulk codes, CSV export."""
from __future__ import annotations

import json

from flask import Blueprint, request, stream_with_context, url_for
from flask_login import current_user

from app.auth.guards import permission_required, user_can
from app.core import clock, nav
from app.core.pagination import keyset_page, parse_limit
from app.core.forms import handle_form
from app.core.web import csv_response, include_test_data, render
from app.coupons import campaigns, coupons
from app.coupons.forms import BulkGenerateForm, CampaignForm
from app.coupons.models import Coupon
from app.coupons.views import DATETIME_LOCAL, form_values
from app.extensions import db

bp = Blueprint("campaigns", __name__, url_prefix="/admin/campaigns")
nav.register("Campaigns", "campaigns.index", "coupons.view", order=41)


@bp.get("")
@permission_required("coupons.view")
def index():
    return render("coupons/campaigns.html", campaigns=campaigns.campaigns(db.session), now=clock.now())


def _campaign_form(campaign, form, act, message):
    if request.method == "GET":
        return render("coupons/campaign_form.html", form=form, campaign=campaign,
                      may_set_budget=user_can("campaigns.set_budget"))
    return handle_form(form, lambda: act(form_values(form)),
                       success=lambda saved: url_for("campaigns.detail", campaign_id=saved.id), message=message,
                       again=lambda form, status: render("coupons/campaign_form.html", form=form, campaign=campaign,
                                                         status=status,
                                                         may_set_budget=user_can("campaigns.set_budget")))


@bp.route("/new", methods=["GET", "POST"])
@permission_required("campaigns.create")
def new():
    return _campaign_form(None, CampaignForm(), lambda values: campaigns.create(db.session, current_user, values),
                          lambda campaign: f"Campaign {campaign.name} created.")


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@permission_required("campaigns.create")
def edit(campaign_id: int):
    campaign = campaigns.get(db.session, campaign_id)
    form = CampaignForm()
    if request.method == "GET":
        form.process(data={"name": campaign.name, "campaign_type": campaign.campaign_type,
                           "starts_at": campaign.starts_at.strftime(DATETIME_LOCAL),
                           "ends_at": campaign.ends_at.strftime(DATETIME_LOCAL),
                           "budget_limit": str(campaign.budget_limit), "target_tier": campaign.target_tier or "",
                           "is_active": campaign.is_active, "description": campaign.description})

    def update(values):
        campaigns.update(db.session, current_user, campaign, values, may_set_budget=user_can("campaigns.set_budget"))
        return campaign

    return _campaign_form(campaign, form, update, f"Campaign {campaign.name} saved.")


@bp.get("/<int:campaign_id>")
@permission_required("coupons.view")
def detail(campaign_id: int):
    campaign = campaigns.get(db.session, campaign_id)
    figures = campaigns.figures(db.session, campaign, include_test_data())
    chart = {"labels": [d.isoformat() for d, _ in figures.daily], "values": [n for _, n in figures.daily]}
    stmt = coupons.search(db.session, campaign_id=campaign.id)
    page = keyset_page(db.session, stmt, Coupon, parse_limit(request.args.get("limit"), 25), request.args.get("cursor"))
    return render("coupons/campaign.html", block="coupons", campaign=campaign, figures=figures,
                  chart_json=json.dumps(chart), page=page)


@bp.route("/<int:campaign_id>/generate", methods=["GET", "POST"])
@permission_required("coupons.create")
def generate(campaign_id: int):
    campaign = campaigns.get(db.session, campaign_id)
    form = BulkGenerateForm()
    if request.method == "GET":
        form.valid_from.data = campaign.starts_at.strftime(DATETIME_LOCAL)
        form.valid_until.data = campaign.ends_at.strftime(DATETIME_LOCAL)
        form.max_uses.data = "1"
        return render("coupons/generate.html", form=form, campaign=campaign)
    return handle_form(form, lambda: coupons.bulk_generate(db.session, current_user, campaign, form_values(form)),
                       success=url_for("campaigns.detail", campaign_id=campaign.id),
                       message=lambda created: f"{len(created)} codes created for {campaign.name}.",
                       again=lambda form, status: render("coupons/generate.html", form=form, campaign=campaign,
                                                         status=status))


@bp.get("/<int:campaign_id>/codes.csv")
@permission_required("coupons.view")
def export(campaign_id: int):
    campaign = campaigns.get(db.session, campaign_id)
    slug = "".join(ch if ch.isalnum() else "-" for ch in campaign.name.lower()).strip("-")
    # The rows stream after the view returns: keep the request (and its session) alive for them.
    rows = stream_with_context(coupons.export_rows(db.session, campaign))
    return csv_response(f"{slug}-codes.csv", coupons.EXPORT_HEADER, rows)
