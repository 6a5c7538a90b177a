"""Forms of the credits screens (the rules live in the services; these only parse)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, DateTimeLocalField, IntegerField, PasswordField, SelectChoice,
                     SelectField, StringField, TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.core import bounds
from app.core.forms import reason_field
from app.core.labels import label
from app.credits.models import STRATEGIES, TIERS


def provider_choices(providers) -> list[SelectChoice]:
    return [SelectChoice(p.id, p.display_name) for p in providers]


# Grant and deduct share a page: their fields keep their names but get ids of their own.
class GrantForm(FlaskForm):
    amount = IntegerField("Credits", id="grant-amount",
                          validators=[InputRequired(message="Give a whole number of credits.")])
    reason = reason_field(textarea=True, id="grant-reason")
    expires_on = DateField("Expires on (optional)", id="grant-expires_on", validators=[Optional()])


class DeductForm(FlaskForm):
    amount = IntegerField("Credits", id="deduct-amount",
                          validators=[InputRequired(message="Give a whole number of credits.")])
    reason = reason_field(textarea=True, id="deduct-reason")


class DecisionForm(FlaskForm):
    note = StringField("Note", validators=[Optional(), Length(max=500)])


class VendorKeyForm(FlaskForm):
    provider_id = SelectField("Provider", coerce=int)
    api_key = PasswordField("API key", validators=[DataRequired(message="Paste the key."), Length(max=500)],
                            render_kw={"autocomplete": "off"})


class ProviderForm(FlaskForm):
    display_name = StringField("Display name", validators=[DataRequired(), Length(max=120)])
    api_endpoint = StringField("API endpoint", validators=[Optional(), Length(max=255)])
    is_active = BooleanField("Active")
    reason = reason_field()


class NewProviderForm(FlaskForm):
    vendor_name = StringField("Vendor name", validators=[DataRequired(), Length(max=40)])
    display_name = StringField("Display name", validators=[DataRequired(), Length(max=120)])
    api_endpoint = StringField("API endpoint", validators=[Optional(), Length(max=255)])
    reason = reason_field()


class PriceForm(FlaskForm):
    input_price = StringField("Input $ / 1M tokens", validators=[DataRequired()])
    output_price = StringField("Output $ / 1M tokens", validators=[DataRequired()])
    effective_at = DateTimeLocalField("Effective from (UTC, empty: now)", format="%Y-%m-%dT%H:%M",
                                      validators=[Optional()])
    reason = reason_field()


class NewModelForm(PriceForm):
    model_name = StringField("Model", validators=[DataRequired(), Length(max=120)])
    provider_id = SelectField("Provider", coerce=int)


class MarginForm(FlaskForm):
    strategy = SelectField("Strategy", choices=[SelectChoice(s, s.replace("_", " ")) for s in STRATEGIES])
    margin_percentage = StringField("Margin % (fixed, or the dynamic base)", validators=[Optional()])
    brackets = TextAreaField("Tiered brackets (min tokens this month: margin %)", validators=[Optional()],
                             render_kw={"rows": 3, "placeholder": "0: 40\n10M: 30\n50M: 20"})
    vendor_adjustments = TextAreaField("Dynamic vendor adjustments (vendor: ± %)", validators=[Optional()],
                                       render_kw={"rows": 3, "placeholder": "openai: 5\nmeta: -10"})
    effective_at = DateTimeLocalField("Effective from (UTC, empty: now)", format="%Y-%m-%dT%H:%M",
                                      validators=[Optional()])
    reason = reason_field()


class CalculatorForm(FlaskForm):
    class Meta:
        csrf = False

    tier = SelectField("Tier", choices=[SelectChoice(t, label(t)) for t in TIERS], default="pro")
    model = SelectField("Model")
    input_tokens = IntegerField("Input tokens", default=500,
                                validators=[InputRequired(), NumberRange(0, 10_000_000)])
    output_tokens = IntegerField("Output tokens", default=300,
                                 validators=[InputRequired(), NumberRange(0, 10_000_000)])
    month_tokens = IntegerField("Tokens so far this month", default=0,
                                validators=[Optional(), NumberRange(0, 10**15)])


class RebuildForm(FlaskForm):
    day = DateField("Day (UTC)", validators=[InputRequired("Pick the day to rebuild."), bounds.sane_date])
