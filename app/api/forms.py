"""Forms of the API-key and OAuth-client screens (rules live in api/keys.py and api/clients.py)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.api.models import KEY_TYPES
from app.core.forms import reason_field
from app.core.labels import label


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
