"""Forms for role assignments, overrides, custom roles and the log filters.

Choices are filled by the view from the service (assignable roles, held permissions);
a tampered value is not rejected by WTForms but by the service, which says why.
"""
from __future__ import annotations

from datetime import timezone

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.fields import DateTimeLocalField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.core.forms import reason_field

REASON_HELP = "Why (kept in the role change log)."


def _reason():
    return reason_field(minimum=3, textarea=True, description=REASON_HELP)


def _expiry(label: str = "Expires at (UTC, optional)"):
    return DateTimeLocalField(label, validators=[Optional()], tz=timezone.utc,
                              invalid_value_message="Use a date and time such as 2025-12-31T18:00.")


class AssignRoleForm(FlaskForm):
    role_id = SelectField("Role", coerce=int, validate_choice=False)
    reason = _reason()
    expires_at = _expiry()
    notify_user = BooleanField("Notify the user")


class ChangeRoleForm(FlaskForm):
    role_id = SelectField("New role", coerce=int, validate_choice=False)
    reason = _reason()
    expires_at = _expiry("New role expires at (UTC, optional)")
    notify_user = BooleanField("Notify the user")


class ReasonForm(FlaskForm):
    """Revoke a role or remove an override: only the reason is asked."""

    reason = _reason()


class OverrideForm(FlaskForm):
    permission = SelectField("Permission", validate_choice=False)
    action = SelectField("Action", choices=[SelectChoice("grant", "Grant"), SelectChoice("revoke", "Revoke")], validate_choice=False)
    reason = _reason()
    expires_at = _expiry()


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CustomRoleForm(FlaskForm):
    name = StringField("Name (lowercase letters, digits and _; it cannot change)", validators=[DataRequired(), Length(max=60)])
    display_name = StringField("Display name", validators=[DataRequired(), Length(max=120)])
    description = StringField("Description", validators=[Optional(), Length(max=255)])
    hierarchy = IntegerField("Hierarchy (2 = high, 99 = low)", default=7,
                             validators=[InputRequired(), NumberRange(min=2, max=99)])
    permissions = MultiCheckboxField("Permissions", validate_choice=False)


class LogFilterForm(FlaskForm):
    """GET filters of the audit and role change logs (no CSRF: they change nothing)."""

    class Meta:
        csrf = False

    actor = StringField("Actor", validators=[Optional(), Length(max=255)])
    target = StringField("Target", validators=[Optional(), Length(max=255)])
    action = SelectField("Action", validate_choice=False)
    date_from = DateField("From (UTC)", validators=[Optional()])
    date_to = DateField("To (UTC, inclusive)", validators=[Optional()])
