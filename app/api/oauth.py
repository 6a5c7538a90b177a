"""POST /api/v1/oauth/token: the client-credentials grant (form, JSON or HTTP Basic)."""
from __future__ import annotations

from flask import current_app, request

from app.api.pipeline import PUBLIC, route
from app.api.schemas import RequestModel, ResponseModel, respond
from app.core import testmode
from app.core.errors import DomainError
from app.extensions import db
from app.api.clients import issue_token


class TokenRequest(RequestModel):
    grant_type: str
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None


class TokenResponse(ResponseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str = "*"


@route("POST", "/oauth/token", auth=PUBLIC, per_ip=lambda: current_app.config["OAUTH_TOKEN_RATE_LIMIT"],
       body=TokenRequest, form_body=True,
       summary="Exchange a client id and secret for a short-lived bearer token", responses={200: TokenResponse},
       tags=["oauth"], description="Client-credentials grant. Send grant_type=client_credentials with "
         "client_id and client_secret as a form, as JSON, or as HTTP Basic credentials. Test clients "
         "get test tokens: their requests run in test mode.")
def oauth_token(body: TokenRequest):
    client_id, secret = body.client_id, body.client_secret
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        client_id, secret = basic.username, basic.password
    if body.grant_type != "client_credentials":
        raise DomainError("unsupported_grant_type", "Only grant_type=client_credentials is supported.",
                          "grant_type", status=400)
    plain, token = issue_token(db.session, client_id, secret)
    if token.is_test:
        testmode.activate()
    response = respond(TokenResponse, {"access_token": plain, "expires_in": current_app.config[
        "OAUTH_TOKEN_TTL_SECONDS"]})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response

