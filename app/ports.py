"""Where a lower layer gets what a higher one provides (the layers: pyproject.toml's import
contracts). The lower package declares a small port and calls it; create_app plugs the higher
package's function in here, so the lower one never imports the higher one."""
from __future__ import annotations

from app.accounts import resource
from app.api import auth as api_auth
from app.api import errors as api_errors
from app.api import keys as api_keys
from app.auth import guards
from app.auth import service as auth_service
from app.billing import invoices, license_sales
from app.core import web
from app.coupons import invoicing as coupon_invoicing
from app.licensing import upgrades
from app.rbac import catalogue
from app.rbac import service as rbac_service
from app.sandbox import twins


def _revoke_api_keys(session, user, reason: str) -> int:
    return api_keys.revoke_keys_of(session, user, user, reason)


def plug() -> None:
    """Idempotent: create_app runs it once per app, and every app gets the same functions."""
    # core answers an API request's failure in the API's error format.
    web.use_json_errors(web.JsonErrors(domain=api_errors.error_response, http=api_errors.http_error_response,
                                       status=api_errors.api_error))
    # auth's guards ask rbac who holds what (rbac's screens use the guards).
    guards.use_permissions(guards.PermissionSource(effective=rbac_service.effective_permissions,
                                                   is_read=catalogue.is_read_permission))
    # A staff member's API keys end with their sessions (app/api builds on auth).
    auth_service.on_sessions_ended("api_keys", _revoke_api_keys)
    # A new period invoice takes the coupon discounts waiting for it (coupons builds on billing).
    invoices.on_period_invoice("coupons", coupon_invoicing.apply_pending)
    # API authentication: OAuth tokens through accounts' Authlib resource server, test twins from
    # the sandbox (both build on app/api).
    api_auth.use_providers(api_auth.Providers(token_row=resource.token_row, twin_id=twins.twin_id,
                                              twin_for=twins.twin_for))
    # A licence-key route sells an upgrade through billing (billing builds on licensing).
    upgrades.use_seller(license_sales.buy_upgrade)
