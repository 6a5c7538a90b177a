"""Staff forms: they carry CSRF and render fields; the services do the validating, and their
DomainError fields match these field names so errors land next to the right input."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.core.forms import reason_field


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms 3.3 wants them."""
    return [SelectChoice(str(value), label) for value, label in pairs]


class ChangeTierForm(FlaskForm):
    to_tier = SelectField("New tier", choices=[])
    effective_date = DateField("Effective date (default: now)", validators=[Optional()])
    reason = StringField("Reason", validators=[Length(max=500)])


class CancelForm(FlaskForm):
    when = SelectField("When", choices=choices([("period_end", "At the end of the period (no refund)"),
                                                ("now", "Now (refund the unused part)")]))
    reason = reason_field()


class ReasonForm(FlaskForm):
    reason = reason_field()


class RefundForm(FlaskForm):
    payment_id = HiddenField()
    amount = StringField("Amount (USD)", validators=[DataRequired(message="Enter an amount."), Length(max=20)])
    reason = reason_field()


class CreateSubscriptionForm(FlaskForm):
    email = StringField("Customer email", validators=[DataRequired(message="Enter the customer's email."),
                                                      Length(max=255)])
    tier = SelectField("Tier", choices=[])
    billing_cycle = SelectField("Billing cycle", choices=choices([("monthly", "Monthly"), ("annual", "Annual")]))
    reason = reason_field()


class TierForm(FlaskForm):
    display_name = StringField("Name", validators=[Length(max=80)])
    monthly_price = StringField("Monthly price (USD)", validators=[Length(max=20)])
    annual_price = StringField("Annual price (USD, blank = 12 x monthly)", validators=[Length(max=20)])
    monthly_credits = StringField("Monthly credits", validators=[Length(max=12)])
    max_rollover = StringField("Max rollover (credits)", validators=[Length(max=12)])
    features = TextAreaField("Feature entitlements (JSON)", validators=[Length(max=5000)])
    is_active = BooleanField("Offered")
    reason = reason_field()


class PackForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=80)])
    credits = StringField("Credits", validators=[Length(max=12)])
    price = StringField("Price (USD)", validators=[Length(max=20)])
    is_active = BooleanField("On sale", default=True)
    reason = reason_field()


class SellPackForm(FlaskForm):
    pack_id = SelectField("Credit pack", choices=[])


class DecisionForm(FlaskForm):
    note = StringField("Note", validators=[Length(max=500)])

