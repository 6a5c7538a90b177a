"""Sign-in, MFA enrolment and verification, sudo mode, sign-out and "my account"."""
from __future__ import annotations

from urllib.parse import urlparse

import segno
from flask import Blueprint, current_app, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import mfa_guard, resume, service
from app.auth.forms import ChangePasswordForm, CodeForm, LoginForm
from app.auth.guards import (SESSION_MFA, SESSION_SEEN, SESSION_STARTED, SESSION_SUDO, permission_required,
                             staff_required, sudo_required)
from app.core import audit, clock
from app.core.errors import DomainError
from app.core.forms import Posted, handle_form, refused_page
from app.core.web import render
from app.extensions import db, limiter, login_manager
from app.users import service as users
from app.users.models import User

bp = Blueprint("auth", __name__)
PENDING_SECRET = "auth_pending_totp"
WRONG_CODE = "That code is not valid, or it was already used. Wait for the next one."


@login_manager.user_loader
def _load_user(raw: str):
    try:
        user_id, version = (int(part) for part in raw.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and user.session_version == version else None


login_manager.login_view = "auth.login"


def _safe_next(target: str | None) -> str:
    if target and urlparse(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("analytics.dashboard")


def _login_email_key() -> str:
    return "login:" + (request.form.get("email") or "").strip().lower()


def _login_ip_email_key() -> str:
    return f"login-ip:{request.remote_addr}:" + (request.form.get("email") or "").strip().lower()


def _failed(response) -> bool:
    return response.status_code >= 400


@bp.route("/auth/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP_ACCOUNT"], key_func=_login_ip_email_key,
               methods=["POST"], deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=_login_email_key,
               methods=["POST"], deduct_when=_failed)
def login():
    form = LoginForm(next=request.args.get("next", ""))

    def page(form, status=200):  # a refused password is answered without the "expired" notice
        expired = None if status == 401 else request.args.get("expired")
        return render("auth/login.html", form=form, expired=expired, status=status)

    if request.method != "POST":
        return page(form)

    def signed_in(user):
        session.clear()  # rotate: nothing from the anonymous session survives sign-in
        login_user(user)
        now = clock.now().timestamp()
        session[SESSION_STARTED] = session[SESSION_SEEN] = now
        session["next"] = _safe_next(form.next.data)
        return redirect(url_for("auth.verify") if user.totp_enabled else url_for("auth.enrol"))

    # A refusal's audit row is committed by authenticate() itself (it outlives the rollback).
    return handle_form(form, lambda: service.authenticate(db.session, form.email.data, form.password.data),
                       success=signed_in, again=page, refused_status=_refused_sign_in)


def _refused_sign_in(error: DomainError) -> int:
    """A refused password is a 401 whatever the reason (one message for every reason)."""
    return 401


def _refused_code(error: DomainError) -> int:
    """A wrong code is a 401, a locked sign-in a 403 (_wrong_code)."""
    return error.status


def _wrong_code(stage: str):
    """Count a wrong code toward the lockout, durably (the refusal rolls back what came after),
    and refuse: locked now, or this code."""
    mfa_guard.record_failure(db.session, current_user, stage)
    db.session.commit()
    if mfa_guard.is_locked(current_user):
        raise DomainError("mfa_locked", mfa_guard.LOCKED_MESSAGE, "code", status=403)
    raise DomainError("invalid_code", WRONG_CODE, "code", status=401)


def _pending_over():
    """A password-only session that waited too long for its code starts over (mfa_guard)."""
    if session.get(SESSION_MFA) or not mfa_guard.pending_expired(SESSION_STARTED):
        return None
    logout_user()
    session.clear()
    return redirect(url_for("auth.login", expired="mfa"))


def _locked(template: str, form):
    form.code.errors = [mfa_guard.LOCKED_MESSAGE]
    return render(template, form=form, status=403)


@bp.route("/auth/verify", methods=["GET", "POST"])
@mfa_guard.throttled
@login_required
def verify():
    if not current_user.totp_enabled:
        return redirect(url_for("auth.enrol"))
    over = _pending_over()
    if over is not None:
        return over
    form = CodeForm()
    if mfa_guard.is_locked(current_user):
        return _locked("auth/verify.html", form)
    page = lambda form, status=200: render("auth/verify.html", form=form, status=status)
    if request.method != "POST":
        return page(form)

    def check():
        code = form.code.data.strip()
        ok = service.verify_totp(db.session, current_user, code) or (
            len(code.replace("-", "")) == 10 and service.use_recovery_code(db.session, current_user, code))
        if not ok:
            _wrong_code("totp")
        failures = mfa_guard.record_success(db.session, current_user)
        current_user.last_login_at = clock.now()
        audit.record(db.session, "auth.login_succeeded", actor=current_user, target=current_user,
                     is_test=False, after={"wrong_codes_before": failures} if failures else None)

    def signed_in(_):
        session[SESSION_MFA] = True
        session[SESSION_SEEN] = clock.now().timestamp()
        return redirect(_safe_next(session.pop("next", None)))

    return handle_form(form, check, success=signed_in, again=page, refused_status=_refused_code)


@bp.route("/auth/enrol", methods=["GET", "POST"])
@login_required
def enrol():
    if current_user.totp_enabled:
        return redirect(url_for("auth.verify"))
    over = _pending_over()
    if over is not None:
        return over
    secret = session.get(PENDING_SECRET) or service.new_totp_secret()
    session[PENDING_SECRET] = secret
    form = CodeForm()

    def page(form, status=200):
        uri = service.provisioning_uri(current_user, secret)
        qr = segno.make(uri, error="m").svg_data_uri(scale=5)
        return render("auth/enrol.html", form=form, secret=secret, qr=qr, uri=uri, status=status)

    if request.method != "POST":
        return page(form)

    def enrolled(codes):
        session.pop(PENDING_SECRET, None)
        session[SESSION_MFA] = True
        return render("auth/recovery_codes.html", codes=codes)  # shown in this answer only

    return handle_form(form, lambda: service.enable_totp(db.session, current_user, secret, form.code.data),
                       success=enrolled, again=page, refused_status=lambda error: 422)


@bp.route("/auth/sudo", methods=["GET", "POST"])
@mfa_guard.throttled
@staff_required
def sudo():
    form = CodeForm(next=request.args.get("next", ""))
    if mfa_guard.is_locked(current_user):
        return _locked("auth/sudo.html", form)

    def page(form, status=200):  # locked now: the action waiting for sudo is not offered
        return render("auth/sudo.html", form=form, pending=None if status == 403 else resume.peek(), status=status)

    if request.method != "POST":
        return page(form)

    def check():
        if not service.verify_totp(db.session, current_user, form.code.data):
            _wrong_code("sudo")
        mfa_guard.record_success(db.session, current_user)
        audit.record(db.session, "auth.sudo_granted", actor=current_user, target=current_user, is_test=False)

    def granted(_):
        session[SESSION_SUDO] = clock.now().timestamp() + current_app.config["SUDO_WINDOW"].total_seconds()
        pending = resume.take()
        if pending is not None:  # finish the action that asked for sudo, with what was typed
            return render("auth/sudo_resume.html", pending=pending, back=_safe_next(form.next.data))
        return redirect(_safe_next(form.next.data))

    return handle_form(form, check, success=granted, again=page, refused_status=_refused_code)


@bp.route("/auth/logout", methods=["POST"])
def logout():
    def sign_out():
        if current_user.is_authenticated:
            service.sign_out(db.session, current_user)

    return handle_form(None, sign_out, success=_signed_out, message="You are signed out.",
                       again=url_for("auth.login"))


def _signed_out(_):
    """After the commit: this session ends (the message is flashed into the new one)."""
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/admin/account/sign-out-everywhere", methods=["POST"])
@staff_required
def logout_everywhere():
    """Every session of this account ends, on every device, this one included."""
    return handle_form(None, lambda: service.sign_out(db.session, current_user, everywhere=True),
                       success=_signed_out, message="You are signed out on every device.",
                       again=url_for("auth.account"))


@bp.get("/admin/account")
@staff_required
def account():
    """The page only: its forms post to their own routes (password, recovery codes, sign-out everywhere)."""
    form = ChangePasswordForm()
    remaining = service.remaining_recovery_codes(db.session, current_user)
    return render("auth/account.html", form=form, remaining=remaining)


@bp.route("/admin/account/password", methods=["POST"])
@staff_required
@sudo_required
def change_password():
    form = ChangePasswordForm()

    def changed(_):
        login_user(current_user)  # re-issue the session for the new session_version
        return url_for("auth.account")

    return handle_form(form, lambda: service.change_password(db.session, current_user, form.current_password.data,
                                                             form.new_password.data),
                       success=changed, message="Your password is changed. Other sessions are signed out.",
                       again=lambda form, status: render(
                           "auth/account.html", form=form, status=status,
                           remaining=service.remaining_recovery_codes(db.session, current_user)))


@bp.route("/admin/account/recovery-codes", methods=["POST"])
@staff_required
@sudo_required
def regenerate_codes():
    def act():
        codes = service.new_recovery_codes(db.session, current_user)
        audit.record(db.session, "auth.recovery_codes_regenerated", actor=current_user, target=current_user)
        return codes

    # The codes are shown in this answer only (never stored in plain text, never shown again).
    return handle_form(None, act, success=lambda codes: render("auth/recovery_codes.html", codes=codes),
                       again=url_for("auth.account"))


@bp.route("/admin/users/<int:user_id>/mfa/unlock", methods=["POST"])
@permission_required("users.unsuspend")
@sudo_required
def unlock_mfa(user_id: int):
    """Lift a two-factor lockout (mfa_guard): audited with the reason."""
    target = users.get_user(db.session, user_id)
    page = url_for("users.detail", user_id=target.id)
    return handle_form(Posted(), lambda: mfa_guard.unlock(db.session, current_user, target, request.form.get("reason")),
                       success=page, again=refused_page, message=f"Two-factor sign-in of {target.email} is unlocked.")
