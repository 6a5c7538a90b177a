"""/api/v1/customers: the provisioning API for the company's own servers (as Stripe's and Lago's).

Callers are server credentials with the customers:write scope: a client-credentials token of
an OAuth client, or an API key of a staff member. A customer's own key or app token is never
one (it could otherwise mint accounts). Live credentials make and see production customers;
sandbox credentials and test clients make and see test accounts only (two worlds, as Stripe's).
"""
from __future__ import annotations

from datetime import datetime

from flask import g, request
from pydantic import Field
from sqlalchemy import select

from app.accounts import service
from app.api.pipeline import route
from app.api.auth import register_scope
from app.api.errors import api_error
from app.api.lists import list_response
from app.api.schemas import RequestModel, ResponseModel, respond
from app.billing.subscriptions import live_subscription
from app.core import audit, testmode
from app.core.errors import DomainError
from app.extensions import db
from app.users.models import SERVICE_PROVIDER, User

WRITE = register_scope("customers:write", "Create, read and update customers (the company's servers)")
MAX_METADATA_KEYS = 50


class CreateCustomerRequest(RequestModel):
    email: str = Field(max_length=255)
    name: str | None = Field(None, max_length=160)
    external_id: str | None = Field(None, max_length=255)
    tier: str = Field("free", max_length=40, description="free; a paid tier only in test mode (422 "
                      "tier_requires_payment otherwise: subscribe the customer with a card)")
    metadata: dict[str, str] | None = None


class UpdateCustomerRequest(RequestModel):
    email: str | None = Field(None, max_length=255)
    name: str | None = Field(None, max_length=160)
    metadata: dict[str, str] | None = None


class ApiCustomer(ResponseModel):
    id: int
    object: str = "customer"
    email: str
    name: str
    external_id: str | None = None
    metadata: dict = {}
    tier: str | None = None
    email_verified: bool
    livemode: bool
    created_at: datetime


def _view(user: User) -> dict:
    sub = live_subscription(db.session, user.id)
    return {"id": user.id, "email": user.email, "name": f"{user.first_name} {user.last_name}".strip(),
            "external_id": user.external_id, "metadata": user.customer_metadata or {},
            "tier": sub.tier.name if sub is not None else None, "email_verified": user.email_verified,
            "livemode": not user.is_test, "created_at": user.created_at}


class _ListedCustomer(ApiCustomer):
    """List items: the same object (the tier read per row)."""

    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        return super().model_validate(_view(obj) if isinstance(obj, User) else obj, *args, **kwargs)


def _server_credential():
    """403 unless the caller is a server: a client-credentials token or a staff member's key."""
    client_token = g.api_client is not None and g.api_key is None and g.api_client.user_id == g.api_user_id
    staff_key = g.api_key is not None and g.api_user.is_staff
    if not (client_token or staff_key):
        return api_error(403, "permission_error", "server_credential_required",
                         "The customers API is for the company's servers: use an OAuth client's "
                         "client-credentials token or a staff member's server key.")
    return None


def _check_metadata(metadata: dict | None) -> dict | None:
    if metadata is not None and len(metadata) > MAX_METADATA_KEYS:
        raise DomainError("invalid_metadata", f"metadata takes at most {MAX_METADATA_KEYS} keys.", "metadata")
    return metadata


def _customers():
    """Customers of the caller's world only; never staff, service accounts or test twins."""
    return select(User).where(User.is_staff.is_(False), User.is_test.is_(testmode.active()),
                              User.deleted_at.is_(None), User.auth_provider != SERVICE_PROVIDER,
                              User.twin_of_id.is_(None))


def _get(customer_id: int) -> User:
    user = db.session.scalar(_customers().where(User.id == customer_id))
    if user is None:
        raise DomainError("resource_missing", f"No such customer: {customer_id}.", "id", status=404)
    return user


@route("POST", "/customers", scopes=WRITE, idempotent=True, body=CreateCustomerRequest,
       summary="Create a customer (free tier provisioned)", responses={201: ApiCustomer}, tags=["customers"])
def create_customer(body: CreateCustomerRequest):
    refused = _server_credential()
    if refused is not None:
        return refused
    user = service.create_customer(db.session, email=body.email, name=body.name or "", actor=g.api_user,
                                   external_id=body.external_id, metadata=_check_metadata(body.metadata),
                                   tier=(body.tier or "free").strip().lower())
    return respond(ApiCustomer, _view(user), 201)


@route("GET", "/customers", scopes=WRITE, summary="List customers, newest first (filter: external_id, email)",
       list_of=ApiCustomer, tags=["customers"])
def list_customers():
    refused = _server_credential()
    if refused is not None:
        return refused
    stmt = _customers()
    if request.args.get("external_id"):
        stmt = stmt.where(User.external_id == request.args["external_id"].strip())
    if request.args.get("email"):
        stmt = stmt.where(User.email == request.args["email"].strip().lower())
    return list_response(db.session, stmt, User, _ListedCustomer)


@route("GET", "/customers/<int:customer_id>", scopes=WRITE, summary="Retrieve a customer",
       responses={200: ApiCustomer}, tags=["customers"])
def get_customer(customer_id: int):
    refused = _server_credential()
    return refused if refused is not None else respond(ApiCustomer, _view(_get(customer_id)))


@route("PATCH", "/customers/<int:customer_id>", scopes=WRITE, body=UpdateCustomerRequest,
       summary="Update a customer's name, email or metadata", responses={200: ApiCustomer}, tags=["customers"])
def update_customer(customer_id: int, body: UpdateCustomerRequest):
    refused = _server_credential()
    if refused is not None:
        return refused
    user = _get(customer_id)
    before = _view(user)
    if body.email is not None:
        email = service.normalise_email(body.email, test=user.is_test)
        if email != user.email and service.email_taken(db.session, email):
            raise DomainError("email_taken", "An account with this email exists already.", "email", status=409)
        if email != user.email:
            user.email, user.email_verified = email, False
    if body.name is not None:
        user.first_name, user.last_name = service.split_name(body.name)
    if body.metadata is not None:
        user.customer_metadata = _check_metadata(body.metadata)
    db.session.flush()
    after = _view(user)
    audit.record(db.session, "accounts.customer_updated", actor=g.api_user, target=user,
                 before={k: str(before[k]) for k in ("email", "name", "metadata")},
                 after={k: str(after[k]) for k in ("email", "name", "metadata")})
    return respond(ApiCustomer, after)
