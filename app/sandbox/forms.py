"""Forms of the test-account, API-key and OAuth-client screens (rules live in the services)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, IntegerField, PasswordField, SelectChoice, SelectField,
                     SelectMultipleField, StringField, TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.core.labels import label
from app.api.models import KEY_TYPES
from app.core.forms import reason_field
from app.sandbox.service import DEFAULT_EXPIRY_DAYS, SUBSCRIPTION_TIERS

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


class BulkDeleteForm(FlaskForm):
    ids = SelectMultipleField("Accounts", coerce=int, validate_choice=False)
    reason = reason_field(required=False)


class ScopesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    owner = StringField("Owner's email", validators=[DataRequired(), Length(max=255)])
    key_type = SelectField("Type", choices=[SelectChoice(t, label(t)) for t in KEY_TYPES], default="sandbox")
    scopes = ScopesField("Scopes", default=["*"], validate_choice=False)
    expires_on = DateField("Expires on (optional, UTC midnight)", validators=[Optional()])


class ReasonForm(FlaskForm):
    reason = reason_field()


class OAuthClientForm(FlaskForm):
    client_id = StringField("Client id", validators=[DataRequired(), Length(max=80)])
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    redirect_uris = TextAreaField("Redirect URIs (one per line)", validators=[Optional()])
    is_test = BooleanField("Test client (its tokens run in test mode)", default=True)
