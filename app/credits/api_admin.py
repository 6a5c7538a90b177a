"""/api/v1/admin/credits: staff allocations (single and bulk) and system analytics.

The key's owner needs the RBAC permission of the route; grants keep the owner's per-role cap
(a single allocation above it becomes an approval request, answered 202). Bulk allocation is
all-or-nothing: every row is checked first and any bad row fails the whole batch with a
per-row report, before anything is written.
"""
from __future__ import annotations

import csv
import io
import json

from flask import g, jsonify, request
from pydantic import ValidationError
from sqlalchemy import select

from app.api.auth import register_scope
from app.api.pipeline import route
from app.api.schemas import ErrorBody, _first_error, respond
from app.core import audit, bounds, clock
from app.core.errors import DomainError, PermissionDenied
from app.credits import analytics, grants, ledger
from app.credits.api_schemas import (AllocateRequest, Allocated, AnalyticsQuery, BulkAllocated, BulkAllocateRequest,
                                     SystemAnalytics, TopSpenders, TopSpendersQuery)
from app.extensions import db
from app.users.models import User

ADMIN = register_scope("credits:admin", "Allocate credits to users and read system credit analytics")
TAGS = ["credits admin"]
MAX_BULK_BYTES = 2 * 1024 * 1024


@route("POST", "/admin/credits/allocate", permission="credits.grant", scopes=ADMIN, body=AllocateRequest,
       idempotent=True, summary="Grant credits to a user (bonus credits)",
       responses={201: Allocated, 202: Allocated, 404: ErrorBody}, tags=TAGS,
       description="Above the key owner's per-transaction cap (ops $100, support $50 of credits) the grant "
                     "becomes an approval request for an uncapped admin: 202 with approval_request_id.")
def allocate(body: AllocateRequest):
    result = grants.grant(db.session, g.api_user, body.user_id, body.amount, body.reason, body.expires_at,
                          source=body.source)
    if result["status"] == "pending_approval":
        return respond(Allocated, {"status": "pending_approval", "approval_request_id": result["request"].id}, 202)
    return respond(Allocated, {"status": "granted", "allocation_id": result["allocation_id"],
                               "balance": result["balance"]}, 201)


def _csv_rows(raw: bytes) -> list[dict]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("invalid_csv", "The CSV must be UTF-8.", None, status=400) from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "amount" not in reader.fieldnames or not (
            {"user_id", "email"} & set(reader.fieldnames)):
        raise DomainError("invalid_csv", "The CSV needs a header with user_id (or email), amount and reason.",
                          None, status=400)
    rows = []
    for raw_row in reader:
        row = {k.strip(): (v or "").strip() for k, v in raw_row.items() if k}
        for key in ("user_id", "amount"):
            if row.get(key, "").isdigit():
                row[key] = int(row[key])
        for key in ("user_id", "email", "source", "expires_at"):
            if row.get(key) == "":
                row.pop(key)
        rows.append(row)
    return rows


def _json_rows(raw: bytes) -> list:
    try:
        data = bounds.loads_json(raw or b"{}")  # a RecursionError on deep nesting is a ValueError
    except (ValueError, UnicodeDecodeError):
        raise DomainError("invalid_json", "The request body is not valid JSON (or nested too deep).", None,
                          status=400) from None
    if not isinstance(data, dict) or set(data) != {"allocations"} or not isinstance(data["allocations"], list):
        raise DomainError("parameter_invalid", 'Send {"allocations": [...]}.', "allocations")
    return data["allocations"]


def _check_row(index: int, row, emails: dict[str, int], cap: int | None) -> tuple[AllocateRequest | None, dict | None]:
    if isinstance(row, dict) and "email" in row and "user_id" not in row:
        user_id = emails.get(str(row["email"]).lower())
        if user_id is None:
            return None, {"row": index, "param": "email", "code": "resource_missing", "message": "No such user."}
        row = {**{k: v for k, v in row.items() if k != "email"}, "user_id": user_id}
    elif isinstance(row, dict):
        row = {k: v for k, v in row.items() if k != "email"}
    try:  # JSON mode: strict types, ISO timestamps accepted (CSV cells were made ints above)
        item = AllocateRequest.model_validate_json(json.dumps(row))
    except ValidationError as exc:
        err = _first_error(exc)
        return None, {"row": index, "param": err.field, "code": err.code, "message": err.message}
    try:  # the grant rules of the screen and the single allocation (a missing permission stays a 403)
        checked = grants.check_grant(db.session, g.api_user, item.user_id, item.amount, item.reason, item.expires_at,
                                     cap=cap)
    except PermissionDenied as error:
        if error.code != "self_grant":
            raise
        return None, {"row": index, "param": "user_id", "code": error.code, "message": error.message}
    except DomainError as error:
        return None, {"row": index, "param": error.field, "code": error.code, "message": error.message}
    if checked.above_cap(item.amount):
        return None, {"row": index, "param": "amount", "code": "above_cap",
                      "message": f"Above your per-transaction cap of {cap:,} credits (use a single allocation "
                                 "for an approval request)."}
    return item, None


@route("POST", "/admin/credits/bulk-allocate", permission="credits.grant", scopes=ADMIN, idempotent=True,
       documented_body=BulkAllocateRequest,
       summary="Grant credits to many users at once (JSON or CSV), all or nothing",
       responses={201: BulkAllocated, 413: ErrorBody}, tags=TAGS, description="Send JSON {\"allocations\": [...]} or text/csv with the columns user_id (or "
                                "email), amount, source, reason, expires_at. Any bad row fails the batch: 422 "
                                "bulk_rows_invalid with `errors`, one entry per bad row; nothing is written.")
def bulk_allocate():
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BULK_BYTES:
        raise DomainError("payload_too_large", "Send at most 2 MB per batch.", None, status=413)
    rows = _csv_rows(raw) if request.mimetype == "text/csv" else _json_rows(raw)
    if not 1 <= len(rows) <= 1000:
        raise DomainError("parameter_invalid", "Send from 1 to 1,000 allocations per batch.", "allocations")
    emails = [str(r["email"]).lower() for r in rows if isinstance(r, dict) and r.get("email")]
    by_email = dict(db.session.execute(select(User.email, User.id).where(User.email.in_(emails))).all()) \
        if emails else {}
    cap = grants.cap_credits(db.session, g.api_user)
    checked = [_check_row(i, row, by_email, cap) for i, row in enumerate(rows, start=1)]
    errors = [err for _, err in checked if err is not None]
    if errors:
        response = jsonify({"error": {"type": "invalid_request_error", "code": "bulk_rows_invalid",
                                      "message": f"{len(errors)} of {len(rows)} rows are invalid; nothing was "
                                                 "allocated.", "param": "allocations"},
                            "errors": errors, "request_id": g.get("request_id")})
        response.status_code = 422
        return response
    results = []
    for index, (item, _) in enumerate(checked, start=1):
        result = grants.grant(db.session, g.api_user, item.user_id, item.amount, item.reason, item.expires_at,
                              source=item.source, cap=cap)
        results.append({"row": index, "user_id": item.user_id, "allocation_id": result["allocation_id"],
                        "balance_total": result["balance"].total})
    total = sum(item.amount for item, _ in checked)
    audit.record(db.session, "credits.bulk_allocated", actor=g.api_user, target_type="credit_allocations",
                 after={"rows": len(results), "total_credits": total})
    return respond(BulkAllocated, {"allocated": len(results), "total_credits": total, "results": results}, 201)



@route("GET", "/admin/credits/analytics/system", permission="analytics.view_usage", scopes=ADMIN,
       query=AnalyticsQuery, summary="Credits issued and spent per day, spend by model and vendor",
       responses={200: SystemAnalytics}, tags=TAGS, description="Production only unless include_test=true.")
def system_analytics(query: AnalyticsQuery):
    start, end = ledger.date_range(query.start, query.end, clock.now().date())
    return respond(SystemAnalytics, analytics.system(db.session, start, end, query.include_test))


@route("GET", "/admin/credits/analytics/top-spenders", permission="analytics.view_usage", scopes=ADMIN,
       query=TopSpendersQuery, summary="The users who spent the most credits over a date range",
       responses={200: TopSpenders}, tags=TAGS, description="Production only unless include_test=true.")
def top_spenders(query: TopSpendersQuery):
    start, end = ledger.date_range(query.start, query.end, clock.now().date())
    data = analytics.top_spenders(db.session, start, end, query.include_test, query.limit)
    return respond(TopSpenders, {"start": start, "end": end, "include_test": query.include_test, "data": data})
