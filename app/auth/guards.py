"""Guards for admin views: signed-in staff with MFA, fresh session, permissions, sudo mode."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlparse

from flask import abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user, logout_user

from app.core import clock, testmode
from app.core.port import Port
from app.extensions import db

SESSION_STARTED = "auth_started_at"
SESSION_SEEN = "auth_last_seen_at"
SESSION_MFA = "auth_mfa_ok"
SESSION_SUDO = "auth_sudo_until"


@dataclass(frozen=True)
class PermissionSource:
    """Who holds which permission, and which permissions only read: rbac's answers. create_app
    plugs them in with use_permissions(): rbac's own screens use these guards, so auth imports no rbac."""

    effective: Callable[..., set[str]]  # (session, user_id) -> the user's permissions now
    is_read: Callable[[str], bool]


_permission_source: Port[PermissionSource] = Port("permission source")
use_permissions = _permission_source.plug


def _redirect_to(url: str):
    """A full-page redirect, also for HTMX requests (never a login page inside a table cell)."""
    from flask import Response

    if request.headers.get("HX-Request"):
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)


def session_expired() -> str | None:
    """Why the staff session is over, if it is (idle or absolute timeout)."""
    now = clock.now().timestamp()
    started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
    if started is None or seen is None:
        return "signed_out"
    if now - seen > current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds():
        return "idle"
    if now - started > current_app.config["SESSION_ABSOLUTE_TIMEOUT"].total_seconds():
        return "absolute"
    return None


def staff_required(view):
    """Signed in, staff, MFA passed and session fresh; otherwise back to sign-in/enrolment."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return _redirect_to(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        reason = session_expired()
        if reason:
            logout_user()
            session.clear()
            return _redirect_to(url_for("auth.login", expired=reason))
        if not current_user.is_staff:
            abort(403, "This console is for staff only.")
        if not current_user.totp_enabled:
            return _redirect_to(url_for("auth.enrol"))
        if not session.get(SESSION_MFA):
            return _redirect_to(url_for("auth.verify"))
        session[SESSION_SEEN] = clock.now().timestamp()
        g.log_user_id = current_user.id
        if current_user.is_test:
            # A test staff persona acts in test mode: it changes test accounts and test rows only,
            # and may still administer the shared catalogue (DESIGN.md §3; core/world_guard.py).
            testmode.activate(catalogue=True)
        return view(*args, **kwargs)

    return wrapped


def _permissions() -> set[str]:
    # Cached per request (in its WSGI environ, not in g: an app context can outlive a request).
    perms = request.environ.get("rephlo.perms")
    if perms is None:
        perms = request.environ["rephlo.perms"] = _permission_source().effective(db.session, current_user.id)
    return perms


def user_can(permission: str) -> bool:
    if not current_user.is_authenticated:
        return False
    return permission in _permissions()


def user_writes() -> bool:
    """Holds at least one permission that changes something (read-only roles hold none)."""
    is_read = _permission_source().is_read
    return current_user.is_authenticated and any(not is_read(p) for p in _permissions())


def request_permission_required(*permissions: str):
    """An approval request ("Request refund", "Request credits"): the listed view permissions and
    at least one write permission. Asking moves nothing, but it is work queued for an admin, which
    read-only roles (analyst, auditor) may not start (issue 15, item 7)."""

    def decorator(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if not user_writes():
                g.missing_permission = "a write permission"
                abort(403, "Read-only roles cannot ask for approvals.")
            return view(*args, **kwargs)

        guarded = permission_required(*permissions)(checked)
        guarded.requires_a_write_permission = True  # read by the permission-matrix tests
        return guarded

    return decorator


def permission_required(*permissions: str):
    """Staff view needing every listed permission; a 403 page names the missing one."""

    def decorator(view):
        @wraps(view)
        def checked(*args, **kwargs):
            for permission in permissions:
                if not user_can(permission):
                    g.missing_permission = permission
                    abort(403, f"You need the {permission} permission to open this page.")
            return view(*args, **kwargs)

        guarded = staff_required(checked)
        guarded.required_permissions = permissions  # read by the permission-matrix test
        return guarded

    return decorator


def sudo_active() -> bool:
    until = session.get(SESSION_SUDO)
    return until is not None and until > clock.now().timestamp()


def _back_path() -> str:
    """Where the sudo prompt returns to: this page for a GET, else the page the form was on,
    as a path (the sign-in views refuse absolute URLs, so a Referer must lose its host)."""
    if request.method == "GET":
        return request.full_path
    back = urlparse(request.headers.get("HX-Current-URL") or request.referrer or "")
    if back.path and back.netloc in ("", request.host):
        return back.path + (f"?{back.query}" if back.query else "")
    return request.full_path


def sudo_required(view):
    """Critical actions need the TOTP re-entered within the sudo window."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not sudo_active():
            from app.auth import resume

            resume.remember()  # the action completes after the code (auth/resume.py)
            return _redirect_to(url_for("auth.sudo", next=_back_path()))
        return view(*args, **kwargs)

    return wrapped
