"""Customers' sign-up, sign-in, password and consent forms."""
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length


class SignUpForm(FlaskForm):
    name = StringField("Your name", validators=[Length(max=160)])
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=255)])
    password = PasswordField("Password (12 characters or more, mixed case and a digit)",
                             validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class SignInForm(FlaskForm):
    # No format check: a test account's address is on the reserved .test domain.
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class ForgotForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])


class ConfirmForm(FlaskForm):
    """A button with a CSRF token: consent, sign out, sign out everywhere."""
