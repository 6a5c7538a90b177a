"""/api/v1/admin/test/...: test accounts and their sandbox keys, for QA scripts and client developers.

An admin action on a test account runs in test mode (X-Test-Mode: true). The key's owner
needs users.view to list, users.edit_profile to create or extend, users.delete to delete.
Production accounts are out of reach of every route here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import g, request
from pydantic import AliasChoices, Field
from sqlalchemy import select

from app.api.pipeline import route
from app.api.auth import register_scope
from app.api.lists import list_response
from app.api.schemas import RequestModel, ResponseModel, UtcDatetime, respond
from app.core import testmode
from app.core.errors import DomainError
from app.extensions import db
from app.api import keys as key_service
from app.sandbox import service
from app.api.models import ApiKey
from app.users.models import User

READ = register_scope("test_data:read", "List test accounts and test keys")
WRITE = register_scope("test_data:write", "Create, extend and delete test accounts and test keys")
Tier = Literal["free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual"]


class CreateTestUserRequest(RequestModel):
    email: str | None = Field(None, max_length=255)
    password: str | None = Field(None, max_length=200)
    tier: Tier | None = None
    expires_in_days: int | None = Field(None, description="1 to 30; default 7")


class UpdateTestUserRequest(RequestModel):
    expires_in_days: int | None = Field(None, description="New expiry, counted from now (1 to 30 days)")
    expires_at: UtcDatetime | None = Field(None, description="Or an absolute expiry within 30 days")


class ApiTestUser(ResponseModel):
    id: int
    email: str
    account_type: str
    tier: str | None = Field(None, validation_alias=AliasChoices("test_tier", "tier"))
    expires_at: datetime | None = Field(None, validation_alias=AliasChoices("test_expires_at", "expires_at"))
    created_at: datetime
    created_by_id: int | None = None


class ApiTestUserCreated(ApiTestUser):
    password: str | None = Field(description="Shown once: not stored, and null on an idempotent replay")


class Deleted(ResponseModel):
    id: int
    object: str
    deleted: bool


class CreateTestKeyRequest(RequestModel):
    user_id: int
    name: str = Field(min_length=1, max_length=120)
    key_type: Literal["sandbox", "development"] = "sandbox"
    expires_at: UtcDatetime | None = None


class ApiTestKey(ResponseModel):
    id: int
    name: str
    key_type: str
    user_id: int
    masked: str
    scopes: list[str]
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime


class ApiTestKeyCreated(ApiTestKey):
    key: str | None = Field(description="Shown once: only a hash is stored; null on an idempotent replay")


@route("POST", "/admin/test/users", permission="users.edit_profile", scopes=WRITE, idempotent=True,
       redact=("password",), body=CreateTestUserRequest, summary="Create a test account",
       responses={201: ApiTestUserCreated}, tags=["test data"])
def create_test_user(body: CreateTestUserRequest):
    """Email, password and tier are optional (generated); the password comes back once."""
    testmode.activate()
    created = service.create_test_user(db.session, g.api_user, email=body.email, password=body.password,
                                       tier=body.tier, expires_in_days=body.expires_in_days)
    data = ApiTestUser.model_validate(created.user).model_dump()
    return respond(ApiTestUserCreated, {**data, "password": created.password}, 201)


@route("GET", "/admin/test/users", permission="users.view", scopes=READ,
       summary="List test accounts, newest first", list_of=ApiTestUser, tags=["test data"],
       description="Filters: creator (staff user id), tier, expiry (active, expiring, expired, never).")
def list_test_users():
    expiry = request.args.get("expiry") or None
    if expiry is not None and expiry not in service.EXPIRY_FILTERS:
        raise DomainError("invalid_filter", f"expiry must be one of {', '.join(service.EXPIRY_FILTERS)}.", "expiry")
    creator = request.args.get("creator") or None
    if creator is not None and not creator.isdigit():
        raise DomainError("invalid_filter", "creator must be a user id.", "creator")
    stmt = service.test_users_stmt(creator_id=int(creator) if creator else None,
                                   tier=request.args.get("tier") or None, expiry=expiry)
    return list_response(db.session, stmt, User, ApiTestUser)


@route("PATCH", "/admin/test/users/<int:user_id>", permission="users.edit_profile", scopes=WRITE,
       body=UpdateTestUserRequest, summary="Extend (or shorten) a test account's expiry",
       responses={200: ApiTestUser}, tags=["test data"])
def update_test_user(user_id: int, body: UpdateTestUserRequest):
    if (body.expires_in_days is None) == (body.expires_at is None):
        raise DomainError("parameter_missing", "Send either expires_in_days or expires_at.", "expires_in_days")
    user = service.get_test_user(db.session, user_id)
    testmode.activate()
    service.set_test_user_expiry(db.session, g.api_user, user, days=body.expires_in_days, at=body.expires_at)
    return respond(ApiTestUser, user)


@route("DELETE", "/admin/test/users/<int:user_id>", permission="users.delete", scopes=WRITE,
       summary="Delete a test account and everything it owns", responses={200: Deleted}, tags=["test data"])
def delete_test_user(user_id: int):
    service.get_test_user(db.session, user_id)
    testmode.activate()
    service.delete_test_users(db.session, g.api_user, [user_id], reason="Deleted through the API")
    return respond(Deleted, {"id": user_id, "object": "test_user", "deleted": True})


@route("POST", "/admin/test/api-keys", permission="users.edit_profile", scopes=WRITE, idempotent=True,
       redact=("key",), body=CreateTestKeyRequest, summary="Create a sandbox or development key for an account",
       responses={201: ApiTestKeyCreated}, tags=["test data"],
       description="Production keys are created on the admin screen (sudo mode) only.")
def create_test_key(body: CreateTestKeyRequest):
    owner = db.session.get(User, body.user_id)
    if owner is None:
        raise DomainError("resource_missing", "No such user.", "user_id", status=404)
    testmode.activate()
    # Keys for production accounts are made on the API-keys screen by staff in live mode (sudo).
    testmode.refuse_production_target(owner)
    key, plain = key_service.create_api_key(db.session, g.api_user, owner=owner, name=body.name,
                                            key_type=body.key_type, expires_at=body.expires_at)
    data = ApiTestKey.model_validate(key).model_dump()
    return respond(ApiTestKeyCreated, {**data, "key": plain}, 201)


@route("GET", "/admin/test/api-keys", permission="users.view", scopes=READ,
       summary="List sandbox and development keys, newest first", list_of=ApiTestKey, tags=["test data"])
def list_test_keys():
    owner = request.args.get("user_id")
    stmt = key_service.keys_stmt(owner_id=int(owner) if owner and owner.isdigit() else None, test_only=True)
    return list_response(db.session, stmt, ApiKey, ApiTestKey)


@route("DELETE", "/admin/test/api-keys/<int:key_id>", permission="users.edit_profile", scopes=WRITE,
       summary="Revoke a sandbox or development key", responses={200: ApiTestKey}, tags=["test data"])
def revoke_test_key(key_id: int):
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.is_test.is_(True)))
    if key is None:
        raise DomainError("resource_missing", "No such test key (production keys are revoked on the screen).",
                          None, status=404)
    testmode.activate()
    key_service.revoke_api_key(db.session, g.api_user, key, "Revoked through the API")
    return respond(ApiTestKey, key)
