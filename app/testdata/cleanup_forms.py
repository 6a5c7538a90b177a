"""Forms of the Test data screen's cleanup actions."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class CleanupNowForm(FlaskForm):
    """Run the nightly cleanup of expired test accounts now (CSRF only)."""


class DeleteAllForm(FlaskForm):
    confirm = BooleanField(
        "I understand: every row marked as test data goes, in every table (production rows stay).",
        validators=[DataRequired("Tick the box to confirm that every test row should be deleted.")])
    reason = TextAreaField("Reason (kept in the audit log)", validators=[Optional(), Length(max=500)])
