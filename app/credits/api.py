"""/api/v1/credits: balance, costs, deductions, transactions, usage stats and the monthly cap.

A key acts for its owner. Creating POSTs take an Idempotency-Key; their work, the ledger
rows and the idempotency record commit together (the @idempotent decorator commits).
"""
from __future__ import annotations

from functools import wraps

from flask import g, jsonify, request, stream_with_context

from app.api import api_bp
from app.api.auth import api_auth, register_scope
from app.api.hotpath import hot_path
from app.api.idempotency import Claim, idempotent
from app.api.schemas import ErrorBody, annotate, api_doc, dump, respond, validate_body, validate_data
from app.core import clock
from app.core.web import csv_response
from app.credits import balances, ledger, metering
from app.credits.api_schemas import (Balance, CalculateAndDeductRequest, CalculateCostRequest, Charged, Cost,
                                     DeductRequest, Deducted, ExportQuery, MonthlyCap, MonthlyCapRequest,
                                     RangeQuery, Transaction, TransactionQuery, UsageStats)
from app.credits.formula import six
from app.extensions import db

READ = register_scope("credits:read", "Read the balance, transactions and usage; price a request")
WRITE = register_scope("credits:write", "Deduct credits and set the monthly cap")
TAGS = ["credits"]


def query_params(model, skip: tuple[str, ...] = ()) -> list[dict]:
    """OpenAPI query parameters from a pydantic query model."""
    schema = model.model_json_schema()
    params = []
    for name, prop in schema.get("properties", {}).items():
        if name in skip:
            continue
        options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
        field = {k: v for k, v in options[0].items() if k != "title"}
        for key in ("default", "description"):
            if key in prop and prop[key] is not None:
                field.setdefault(key, prop[key])
        param = {"name": name, "in": "query", "required": name in schema.get("required", []),
                 "schema": {k: v for k, v in field.items() if k != "description"}}
        if field.get("description"):
            param["description"] = field["description"]
        params.append(param)
    return params


def with_query(model, skip: tuple[str, ...] = ()):
    """Validate the query string with `model` (422 naming the bad parameter) and document it."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            kwargs["query"] = validate_data(model, request.args.to_dict())
            return view(*args, **kwargs)

        annotate(wrapped, query_params=query_params(model, skip), responses={422: ErrorBody})
        return wrapped

    return decorator


def cost_dict(q) -> dict:
    return {"model": q.model, "vendor_cost_usd": six(q.vendor_cost), "margin_percentage": f"{q.margin:.2f}",
            "customer_cost_usd": six(q.customer_cost), "credits": q.credits}


@api_bp.get("/credits/balance")
@api_auth(scopes=READ, load_owner=False)
@api_doc("The key owner's credit balance", responses={200: Balance}, tags=TAGS)
def credit_balance():
    return respond(Balance, balances.get_balance(db.session, g.api_user_id))


@api_bp.post("/credits/calculate-cost")
@api_auth(scopes=READ, load_owner=False)
@validate_body(CalculateCostRequest)
@api_doc("Price a request without charging it", responses={200: Cost}, tags=TAGS,
         description="The price row and margin in force now, at the owner's tier and tokens so far this month.")
def calculate_cost(body: CalculateCostRequest):
    q = metering.estimate(db.session, g.api_user_id, body.model, body.input_tokens, body.output_tokens)
    db.session.rollback()
    return respond(Cost, cost_dict(q))


@api_bp.post("/credits/calculate-and-deduct")
@hot_path
@api_auth(scopes=WRITE, load_owner=False)
@idempotent
@validate_body(CalculateAndDeductRequest)
@api_doc("Price an LLM request and charge it", responses={201: Charged, 402: ErrorBody}, tags=TAGS,
         description="One atomic deduction with its usage and deduction rows. 402 insufficient_credits or "
                     "monthly_cap_exceeded; 409 duplicate_request_id when the request_id was charged already.")
def calculate_and_deduct(body: CalculateAndDeductRequest, claim: Claim | None = None):
    """The hot path: client apps call it once per LLM request (app/api/hotpath.py). The service
    returns data; the answer is built here by the response model and stored for replays by the
    API layer (`claim` is @hot_path's calling convention: the credits domain does not use it)."""
    result = metering.calculate_and_deduct(db.session, g.api_user_id, body.model, body.input_tokens,
                                           body.output_tokens, body.request_id, body.deduction_type)
    return respond(Charged, result, 201)


@api_bp.post("/credits/deduct")
@api_auth(scopes=WRITE, load_owner=False)
@idempotent
@validate_body(DeductRequest)
@api_doc("Deduct a number of credits", responses={201: Deducted, 402: ErrorBody}, tags=TAGS,
         description="For charges that are not token-priced (fine-tuning, embeddings priced elsewhere, custom).")
def deduct(body: DeductRequest):
    _, view = balances.deduct(db.session, g.api_user_id, body.amount, body.deduction_type,
                              related_usage_id=body.related_usage_id)
    return respond(Deducted, {"credits_deducted": body.amount, "balance": view}, 201)


def _cap_dict(view: balances.BalanceView) -> dict:
    remaining = None if view.monthly_cap is None else max(0, view.monthly_cap - view.mtd_credits)
    return {"monthly_cap": view.monthly_cap, "remaining": remaining,
            "month_to_date": {"credits": view.mtd_credits, "tokens": view.mtd_tokens}}


@api_bp.get("/credits/monthly-cap")
@api_auth(scopes=READ, load_owner=False)
@api_doc("The monthly spending cap and what is left of it", responses={200: MonthlyCap}, tags=TAGS)
def get_monthly_cap():
    return respond(MonthlyCap, _cap_dict(balances.get_balance(db.session, g.api_user_id)))


@api_bp.post("/credits/monthly-cap")
@api_auth(scopes=WRITE)
@idempotent
@validate_body(MonthlyCapRequest)
@api_doc("Set (or remove, with null) the monthly spending cap", responses={200: MonthlyCap}, tags=TAGS)
def set_monthly_cap(body: MonthlyCapRequest):
    view = balances.set_monthly_cap(db.session, g.api_user_id, body.monthly_cap, actor=g.api_user)
    return respond(MonthlyCap, _cap_dict(view))


@api_bp.get("/credits/transactions")
@api_auth(scopes=READ, load_owner=False)
@with_query(TransactionQuery, skip=("limit", "starting_after"))
@api_doc("Credit transactions (allocations and deductions), newest first", list_of=Transaction, tags=TAGS)
def transactions(query: TransactionQuery):
    ledger.check_filters(query.type, query.kind)
    cursor = ledger.cursor_for(db.session, g.api_user_id, query.starting_after) if query.starting_after else None
    page = ledger.transactions(db.session, g.api_user_id, limit=query.limit, starting_after=cursor,
                               type_=query.type, kind=query.kind, since=query.start, until=query.end)
    return jsonify({"object": "list", "url": request.path, "has_more": page.has_more,
                    "data": [dump(Transaction, item) for item in page.items]})


@api_bp.get("/credits/transactions/export")
@api_auth(scopes=READ, load_owner=False)
@with_query(ExportQuery)
@api_doc("Every matching transaction as CSV (streamed)", responses={200: None}, tags=TAGS)
def export_transactions(query: ExportQuery):
    ledger.check_filters(query.type, query.kind)
    user_id = g.api_user_id
    rows = ledger.iterate_transactions(db.session, user_id, type_=query.type, kind=query.kind, since=query.start,
                                       until=query.end)
    header = ["id", "object", "kind", "amount", "balance_after", "created_at", "reason", "usage_id",
              "related_usage_id", "is_test"]
    cells = stream_with_context(
        [i["id"], i["object"], i["kind"], i["amount"], i["balance_after"], i["created_at"].isoformat(),
         i["reason"], i["usage_id"], i["related_usage_id"], i["is_test"]] for i in rows)
    return csv_response(f"credit-transactions-{clock.now():%Y%m%d}.csv", header, cells)


@api_bp.get("/credits/usage/stats")
@api_auth(scopes=READ, load_owner=False)
@with_query(RangeQuery)
@api_doc("Usage by day and by model over a date range (at most 366 days)", responses={200: UsageStats}, tags=TAGS)
def usage_stats(query: RangeQuery):
    start, end = ledger.date_range(query.start, query.end, clock.now().date())
    return respond(UsageStats, ledger.usage_stats(db.session, g.api_user_id, start, end))
