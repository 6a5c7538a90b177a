"""Coupon, campaign, rule, preview, reversal and review forms.

Money and counts are text fields on purpose: the services parse them (a DecimalField would
silently round 12.345), so the screens and the API share one notion of a valid amount.
"""
from flask_wtf import FlaskForm
from wtforms import (BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField, widgets)
from wtforms.validators import DataRequired, Email, Length, Optional

from app.core.forms import reason_field
from app.core.labels import label
from app.coupons.models import BILLING_CYCLES, CAMPAIGN_TYPES, COUPON_TYPES, DISCOUNT_TYPES, RULE_TYPES, TIERS


def _options(values) -> dict[str, str]:
    """Choices as a {value: label} dict (WTForms 3.3 deprecates tuples)."""
    return {v: label(v) for v in values}


class MultiCheckbox(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class CampaignForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    campaign_type = SelectField("Type", choices=_options(CAMPAIGN_TYPES))
    starts_at = StringField("Starts (UTC)", validators=[DataRequired()], render_kw={"type": "datetime-local"})
    ends_at = StringField("Ends (UTC)", validators=[DataRequired()], render_kw={"type": "datetime-local"})
    budget_limit = StringField("Budget (USD)", validators=[DataRequired()], render_kw={"inputmode": "decimal"})
    target_tier = SelectField("Target tier", choices={"": "all tiers", **_options(TIERS)}, validators=[Optional()])
    is_active = BooleanField("Active", default=True)
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)])


class CouponForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(max=40)])
    description = StringField("Description", validators=[Optional(), Length(max=2000)])
    coupon_type = SelectField("Coupon type", choices=_options(COUPON_TYPES))
    discount_type = SelectField("Discount type", choices=_options(DISCOUNT_TYPES))
    discount_value = StringField("Discount value (%, USD, credits or months)", validators=[DataRequired()],
                                 render_kw={"inputmode": "decimal"})
    max_uses = StringField("Max uses (blank = unlimited)", validators=[Optional()], render_kw={"inputmode": "numeric"})
    max_uses_per_user = StringField("Max uses per user (blank = unlimited)", default="1",
                                    validators=[Optional()], render_kw={"inputmode": "numeric"})
    min_purchase_amount = StringField("Minimum purchase (USD)", default="0.00", render_kw={"inputmode": "decimal"})
    tier_eligibility = MultiCheckbox("Tiers (none ticked = all)", choices=_options(TIERS))
    billing_cycles = MultiCheckbox("Billing cycles (none ticked = all)", choices=_options(BILLING_CYCLES))
    valid_from = StringField("Valid from (UTC)", validators=[DataRequired()], render_kw={"type": "datetime-local"})
    valid_until = StringField("Valid until (UTC)", validators=[DataRequired()], render_kw={"type": "datetime-local"})
    campaign_id = SelectField("Campaign", choices={}, validators=[Optional()])
    is_active = BooleanField("Active", default=True)
    is_stackable = BooleanField("Stackable with other coupons on one invoice")
    requires_licensed_device = BooleanField("Only from a licensed device")
    reason = StringField("Reason for the change", validators=[Optional(), Length(max=500)])


class BulkGenerateForm(CouponForm):
    code = None  # codes are generated
    count = StringField("How many codes", default="500", validators=[DataRequired()],
                        render_kw={"inputmode": "numeric"})
    prefix = StringField("Prefix", validators=[Optional(), Length(max=20)])
    length = StringField("Random characters", default="8", render_kw={"inputmode": "numeric"})
    campaign_id = None


class RuleForm(FlaskForm):
    rule_type = SelectField("Rule", choices=_options(RULE_TYPES))
    domains = StringField("Email domains (for the domain rule)", validators=[Optional(), Length(max=5000)],
                          render_kw={"placeholder": "company.com, partner.org"})
    min_balance = StringField("Minimum credit balance (for the balance rule)", validators=[Optional(), Length(max=20)],
                              render_kw={"inputmode": "numeric", "placeholder": "1,000"})
    days = StringField("Days since a refund (for the refund rule)", validators=[Optional(), Length(max=10)],
                       render_kw={"inputmode": "numeric", "placeholder": "90"})
    rule_value = TextAreaField("Parameters as JSON (scripts; the fields above are enough)", default="",
                               validators=[Length(max=5000)])


class PreviewForm(FlaskForm):
    email = StringField("Customer email", validators=[DataRequired(), Email(), Length(max=255)])
    amount = StringField("Amount (USD)", default="99.99", validators=[DataRequired()],
                         render_kw={"inputmode": "decimal"})
    tier = SelectField("Tier", choices={"": "(none)", **_options(TIERS)}, default="pro")
    billing_cycle = SelectField("Billing cycle", choices={"": "(none)", **_options(BILLING_CYCLES)},
                                default="monthly")


class ReasonForm(FlaskForm):
    reason = reason_field()


class ReviewForm(FlaskForm):
    action = SelectField("Decision", choices={"dismiss": "Dismiss: not fraud", "confirm": "Confirm fraud",
                                              "suspend": "Confirm and suspend the account"})
    resolution = reason_field("What you found")
