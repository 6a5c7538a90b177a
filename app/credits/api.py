"""/api/v1/credits: balance, costs, deductions, transactions, usage stats and the monthly cap.

A key acts for its owner. Creating POSTs take an Idempotency-Key; their work, the ledger
rows and the idempotency record commit together (app/api/pipeline.py commits).
"""
from __future__ import annotations

from flask import g, jsonify, request, stream_with_context

from app.api.auth import register_scope
from app.api.pipeline import route
from app.api.schemas import ErrorBody, dump, respond
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


def cost_dict(q) -> dict:
    return {"model": q.model, "vendor_cost_usd": six(q.vendor_cost), "margin_percentage": f"{q.margin:.2f}",
            "customer_cost_usd": six(q.customer_cost), "credits": q.credits}


@route("GET", "/credits/balance", scopes=READ, load_owner=False,
       summary="The key owner's credit balance", responses={200: Balance}, tags=TAGS)
def credit_balance():
    return respond(Balance, balances.get_balance(db.session, g.api_user_id))


@route("POST", "/credits/calculate-cost", scopes=READ, load_owner=False, body=CalculateCostRequest,
       summary="Price a request without charging it", responses={200: Cost}, tags=TAGS,
       description="The price row and margin in force now, at the owner's tier and tokens so far this month.")
def calculate_cost(body: CalculateCostRequest):
    q = metering.estimate(db.session, g.api_user_id, body.model, body.input_tokens, body.output_tokens)
    return respond(Cost, cost_dict(q))


@route("POST", "/credits/calculate-and-deduct", scopes=WRITE, load_owner=False, body=CalculateAndDeductRequest,
       idempotent=True, summary="Price an LLM request and charge it", responses={201: Charged, 402: ErrorBody},
       tags=TAGS, description="One atomic deduction with its usage and deduction rows. 402 insufficient_credits or "
                              "monthly_cap_exceeded; 409 duplicate_request_id when the request_id was charged already.")
def calculate_and_deduct(body: CalculateAndDeductRequest):
    """Client apps call it once per LLM request: what the pipeline makes fast (app/api/pipeline.py).
    The service returns data; the response model builds the answer, the pipeline stores it."""
    result = metering.calculate_and_deduct(db.session, g.api_user_id, body.model, body.input_tokens,
                                           body.output_tokens, body.request_id, body.deduction_type)
    return respond(Charged, result, 201)


@route("POST", "/credits/deduct", scopes=WRITE, load_owner=False, body=DeductRequest, idempotent=True,
       summary="Deduct a number of credits", responses={201: Deducted, 402: ErrorBody}, tags=TAGS,
       description="For charges that are not token-priced (fine-tuning, embeddings priced elsewhere, custom).")
def deduct(body: DeductRequest):
    _, view = balances.deduct(db.session, g.api_user_id, body.amount, body.deduction_type,
                              related_usage_id=body.related_usage_id)
    return respond(Deducted, {"credits_deducted": body.amount, "balance": view}, 201)


def _cap_dict(view: balances.BalanceView) -> dict:
    remaining = None if view.monthly_cap is None else max(0, view.monthly_cap - view.mtd_credits)
    return {"monthly_cap": view.monthly_cap, "remaining": remaining,
            "month_to_date": {"credits": view.mtd_credits, "tokens": view.mtd_tokens}}


@route("GET", "/credits/monthly-cap", scopes=READ, load_owner=False,
       summary="The monthly spending cap and what is left of it", responses={200: MonthlyCap}, tags=TAGS)
def get_monthly_cap():
    return respond(MonthlyCap, _cap_dict(balances.get_balance(db.session, g.api_user_id)))


@route("POST", "/credits/monthly-cap", scopes=WRITE, body=MonthlyCapRequest, idempotent=True,
       summary="Set (or remove, with null) the monthly spending cap", responses={200: MonthlyCap}, tags=TAGS)
def set_monthly_cap(body: MonthlyCapRequest):
    view = balances.set_monthly_cap(db.session, g.api_user_id, body.monthly_cap, actor=g.api_user)
    return respond(MonthlyCap, _cap_dict(view))


@route("GET", "/credits/transactions", scopes=READ, load_owner=False, query=TransactionQuery,
       query_skip=("limit", "starting_after"),
       summary="Credit transactions (allocations and deductions), newest first", list_of=Transaction, tags=TAGS)
def transactions(query: TransactionQuery):
    ledger.check_filters(query.type, query.kind)
    cursor = ledger.cursor_for(db.session, g.api_user_id, query.starting_after) if query.starting_after else None
    page = ledger.transactions(db.session, g.api_user_id, limit=query.limit, starting_after=cursor,
                               type_=query.type, kind=query.kind, since=query.start, until=query.end)
    return jsonify({"object": "list", "url": request.path, "has_more": page.has_more,
                    "data": [dump(Transaction, item) for item in page.items]})


@route("GET", "/credits/transactions/export", scopes=READ, load_owner=False, query=ExportQuery, streams=True,
       summary="Every matching transaction as CSV (streamed)", responses={200: None}, tags=TAGS)
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


@route("GET", "/credits/usage/stats", scopes=READ, load_owner=False, query=RangeQuery,
       summary="Usage by day and by model over a date range (at most 366 days)", responses={200: UsageStats},
       tags=TAGS)
def usage_stats(query: RangeQuery):
    start, end = ledger.date_range(query.start, query.end, clock.now().date())
    return respond(UsageStats, ledger.usage_stats(db.session, g.api_user_id, start, end))
