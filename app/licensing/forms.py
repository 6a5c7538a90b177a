"""Staff forms for licenses, devices and app versions.

WTForms checks presence and shape; the services check the rules (SemVer, money, seats)
and their DomainError lands on the named field.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.core.forms import reason_field


def _reason(label: str = "Reason"):
    return reason_field(label, minimum=5, textarea=True, description="Kept in the audit log.")


def _version(label: str, required: bool = True):
    checks = [DataRequired("Enter a version such as 2.0.0.")] if required else [Optional()]
    return StringField(label, validators=checks + [Length(max=64)], description="Semantic version, e.g. 2.0.0")


class LicenseCreateForm(FlaskForm):
    owner_email = EmailField("Owner email", validators=[DataRequired(), Length(max=255)])
    purchase_price = StringField("Purchase price (USD)", default="299.99", validators=[DataRequired(), Length(max=20)])
    purchased_version = _version("Purchased version")
    eligible_until_version = _version("Eligible until (exclusive; empty = next major)", required=False)
    max_activations = IntegerField("Max activations", default=3,
                                   validators=[InputRequired(), NumberRange(min=1, max=1000)])
    expires_at = DateField("Expires on (optional)", validators=[Optional()])
    status = SelectField("Issue as", choices=[SelectChoice("active", "Active now (no charge)"),
                                              SelectChoice("pending", "Pending payment (billing completes it)")])
    reason = reason_field("Note (optional)", textarea=True, required=False)


class ReasonForm(FlaskForm):
    reason = _reason()


class MaxActivationsForm(FlaskForm):
    max_activations = IntegerField("Max activations", validators=[InputRequired(), NumberRange(min=1, max=1000)])
    reason = _reason()


class EligibilityForm(FlaskForm):
    eligible_until_version = _version("Eligible until (exclusive)")
    reason = _reason()


class ReplaceDeviceForm(FlaskForm):
    new_fingerprint = StringField("New device fingerprint (SHA-256, 64 hex)", validators=[DataRequired(), Length(max=80)])
    device_name = StringField("Device name", validators=[Optional(), Length(max=120)])
    os_type = StringField("OS type", validators=[Optional(), Length(max=40)])
    os_version = StringField("OS version", validators=[Optional(), Length(max=80)])
    cpu_info = StringField("CPU", validators=[Optional(), Length(max=160)])
    reason = _reason()


class VersionForm(FlaskForm):
    version = _version("Version")
    release_date = DateField("Release date", validators=[DataRequired("Enter the release date.")])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])


class VersionEditForm(FlaskForm):
    release_date = DateField("Release date", validators=[DataRequired("Enter the release date.")])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])
