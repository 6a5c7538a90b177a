"""Forms of the Test data screens: cleanups and test clocks."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from app.core.forms import reason_field


class CleanupNowForm(FlaskForm):
    """Run the nightly cleanup of expired test accounts now (CSRF only)."""


class DeleteAllForm(FlaskForm):
    confirm = BooleanField(
        "I understand: every row marked as test data goes, in every table (production rows stay).",
        validators=[DataRequired("Tick the box to confirm that every test row should be deleted.")])
    reason = reason_field("Reason (kept in the audit log)", textarea=True, required=False)


class ClockCreateForm(FlaskForm):
    # No Email() validator: it refuses the reserved .test domain test accounts live under;
    # the service looks the account up and says so when there is none.
    email = EmailField("Test account email", validators=[DataRequired(), Length(max=255)])


class ClockAdvanceForm(FlaskForm):
    days = IntegerField("Days", default=0, validators=[InputRequired(), NumberRange(min=0, max=400)])
    hours = IntegerField("Hours", default=0, validators=[InputRequired(), NumberRange(min=0, max=23)])
