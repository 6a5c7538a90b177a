"""Forms of the test-account screens (rules live in the services)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.core.forms import reason_field
from app.core.labels import label
from app.sandbox.expiry import DEFAULT_EXPIRY_DAYS
from app.sandbox.service import SUBSCRIPTION_TIERS

TIER_CHOICES = [SelectChoice("", "No tier")] + [SelectChoice(t, label(t)) for t in SUBSCRIPTION_TIERS]


class TestUserForm(FlaskForm):
    # Checked by the service (which accepts the reserved .test domain that WTForms' Email() refuses).
    email = StringField("Email (optional: generated under @example.test)", validators=[Optional(), Length(max=255)])
    password = PasswordField("Password (optional: generated and shown once)", validators=[Optional(),
                                                                                         Length(max=200)])
    tier = SelectField("Tier", choices=TIER_CHOICES, default="")
    expires_in_days = IntegerField("Expires in (days, 1 to 30)", default=DEFAULT_EXPIRY_DAYS,
                                   validators=[InputRequired()])


class BatchForm(FlaskForm):
    count = IntegerField("How many", default=10, validators=[InputRequired()])
    prefix = StringField("Email prefix", default="qa", validators=[DataRequired(), Length(max=30)])
    tier = SelectField("Tier", choices=TIER_CHOICES, default="")
    expires_in_days = IntegerField("Expires in (days, 1 to 30)", default=DEFAULT_EXPIRY_DAYS,
                                   validators=[InputRequired()])


class ExtendForm(FlaskForm):
    expires_in_days = IntegerField("Days from now", default=DEFAULT_EXPIRY_DAYS, validators=[InputRequired()])


class BulkExtendForm(FlaskForm):
    ids = SelectMultipleField("Accounts", coerce=int, validate_choice=False)
    expires_in_days = IntegerField("Days from now", default=DEFAULT_EXPIRY_DAYS, validators=[InputRequired()])


class BulkDeleteForm(FlaskForm):
    ids = SelectMultipleField("Accounts", coerce=int, validate_choice=False)
    reason = reason_field(required=False)
