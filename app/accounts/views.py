"""Hosted customer pages under /account/: sign up, sign in, verify email, forgot/reset, sign out.

Another blueprint and another cookie than the staff console (core/sessions.py); throttled
like the staff sign-in (per IP and per account, failures only).
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, url_for

from app.accounts import service
from app.accounts.forms import ConfirmForm, ForgotForm, ResetForm, SignInForm, SignUpForm
from app.accounts.guards import current_customer, customer_required, safe_next, sign_in as start_session, sign_out
from app.core.errors import DomainError
from app.core.forms import handle_form
from app.core.web import render
from app.extensions import db, limiter

bp = Blueprint("accounts", __name__, url_prefix="/account")


def _email_key() -> str:
    return "account-login:" + (request.form.get("email") or "").strip().lower()


def _failed(response) -> bool:
    return response.status_code >= 400


def _ip_email_key() -> str:
    return f"account-login-ip:{request.remote_addr}:" + (request.form.get("email") or "").strip().lower()


def _per_ip():
    """Sign-up, forgot and reset, per address: nothing secret to guess, only abuse to slow."""
    return current_app.config["ACCOUNT_LIMIT_PER_IP"]


def _per_ip_account():
    return current_app.config["LOGIN_LIMIT_PER_IP_ACCOUNT"]


def _per_account():
    return current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_per_ip, methods=["POST"], deduct_when=_failed)
def sign_up():
    form = SignUpForm(next=request.args.get("next", ""))
    page = lambda form, status=200: render("accounts/sign_up.html", form=form, status=status)
    if request.method != "POST":
        return page(form)

    def welcome(user):
        start_session(user)
        flash("Welcome! We sent a link to confirm your email address.", "success")
        return redirect(safe_next(form.next.data))

    # A taken email is a 409 (error_status), any other refusal a 422.
    return handle_form(form, lambda: service.sign_up(db.session, email=form.email.data, name=form.name.data,
                                                     password=form.password.data),
                       success=welcome, again=page)


def _refused_sign_in(error: DomainError) -> int:
    """A refused sign-in is a 401, whatever the reason (one message for every reason)."""
    return 401


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit(_per_ip_account, key_func=_ip_email_key, methods=["POST"], deduct_when=_failed)
@limiter.limit(_per_account, key_func=_email_key, methods=["POST"], deduct_when=_failed)
def sign_in():
    form = SignInForm(next=request.args.get("next", ""))
    page = lambda form, status=200: render("accounts/sign_in.html", form=form, status=status)
    if request.method != "POST":
        return page(form)

    def signed_in(user):
        start_session(user)  # a new session: nothing of the anonymous one survives
        return redirect(safe_next(form.next.data))

    # The refusal's audit row is committed by authenticate() itself (it outlives the rollback).
    return handle_form(form, lambda: service.authenticate(db.session, form.email.data, form.password.data),
                       success=signed_in, again=page, refused_status=_refused_sign_in)


def _back_to_sign_in(form=None, status=None):
    """A sign-out button whose form did not validate signs nothing out, and says nothing."""
    return redirect(url_for("accounts.sign_in"))


@bp.post("/signout")
def sign_out_view():
    def signed_out(_):
        sign_out()
        return redirect(url_for("accounts.sign_in"))

    return handle_form(ConfirmForm(), lambda: None, success=signed_out, again=_back_to_sign_in)


@bp.get("/verify/<token>")
def verify_email(token: str):
    try:
        service.verify_email(db.session, token)
    except DomainError as error:
        return render("accounts/message.html", title="Link not valid", message=error.message, status=400)
    db.session.commit()
    flash("Thank you: your email address is confirmed.", "success")
    return redirect(url_for("accounts.home") if current_customer() else url_for("accounts.sign_in"))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_per_ip, methods=["POST"])
def forgot_password():
    form = ForgotForm()
    page = lambda form, status=200: render("accounts/forgot.html", form=form, status=status)
    if request.method != "POST":
        return page(form)
    return handle_form(form, lambda: service.request_reset(db.session, form.email.data), again=page,
                       success=lambda _: render(
                           "accounts/message.html", title="Check your email",
                           message="If an account uses this address, we sent it a link to choose a new password."))


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_per_ip, methods=["POST"], deduct_when=_failed)
def reset_password(token: str):
    try:
        service.user_for_reset(db.session, token)
    except DomainError as error:
        return render("accounts/message.html", title="Link not valid", message=error.message, status=400)
    form = ResetForm()
    page = lambda form, status=200: render("accounts/reset.html", form=form, status=status)
    if request.method != "POST":
        return page(form)

    def changed(user):
        start_session(user)
        flash("Your password is changed; every other session was signed out.", "success")
        return redirect(url_for("accounts.home"))

    return handle_form(form, lambda: service.reset_password(db.session, token, form.password.data),
                       success=changed, again=page, refused_status=lambda error: 422)


@bp.post("/signout-everywhere")
@customer_required
def sign_out_everywhere():
    def signed_out(_):
        sign_out()
        flash("You are signed out on every device and app.", "success")
        return redirect(url_for("accounts.sign_in"))

    return handle_form(ConfirmForm(), lambda: service.sign_out_everywhere(db.session, current_customer()),
                       success=signed_out, again=_back_to_sign_in)
