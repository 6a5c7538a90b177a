"""Access tokens checked at /api/v1 by Authlib's ResourceProtector (RFC 6750).

api/auth.py asks this module (plugged in by app/ports.py) for the token row behind a `Bearer rph_oat_...` header. Authlib
parses the header and refuses an unknown, expired or revoked token (invalid_token); we then
name which, in the API's own error codes. Scopes are checked by the API's one pipeline
(api/auth.check_access), the same for keys and tokens.
"""
from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator

from app.accounts import tokens
from app.accounts.oauth_server import Token
from app.api.auth import TokenRefused
from app.api.models import OAuthToken
from app.extensions import db


class _Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        row = tokens.by_access(db.session, token_string)
        return Token(row) if row is not None else None


require_oauth = ResourceProtector()
require_oauth.register_token_validator(_Validator())


def token_row(secret: str) -> OAuthToken:
    """The request's valid access token row, or TokenRefused naming why (unknown, revoked, expired)."""
    try:
        return require_oauth.acquire_token().row
    except OAuth2Error:
        row = tokens.by_access(db.session, secret)
        if row is None:
            raise TokenRefused("invalid_api_key", "Invalid access token provided.") from None
        if row.revoked_at is not None:
            raise TokenRefused("access_token_revoked", "This access token was revoked.") from None
        raise TokenRefused("access_token_expired", "This access token has expired; request a new one.") from None
