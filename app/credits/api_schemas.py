"""Request and response models of the credits API (they validate, serialise and document it).

Bounds sit in the schemas (so the OpenAPI document states them) and again in the services
(so the screens and jobs are held to the same rules).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.api.schemas import RequestModel, ResponseModel, UtcDatetime
from app.credits.formula import MAX_TOKENS_PER_REQUEST

ClientDeduction = Literal["inference", "embedding", "fine_tuning", "custom"]
GrantSource = Literal["admin_grant", "promotional_bonus", "coupon", "purchase"]
Tokens = Field(ge=0, le=MAX_TOKENS_PER_REQUEST, description="0 to 10,000,000 per request")
MAX_CREDITS = 10**12
MAX_ID = 2**63 - 1


def _storable(value: str) -> str:
    """JSON can carry lone surrogates (\\ud800) that no database column can store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_storable)]


class CalculateCostRequest(RequestModel):
    model: Text = Field(min_length=1, max_length=120, examples=["gpt-4-turbo"])
    input_tokens: int = Tokens
    output_tokens: int = Tokens


class CalculateAndDeductRequest(CalculateCostRequest):
    request_id: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
                            description="Your id for the LLM request; charged once per user",
                            examples=["req_20251108_001"])
    deduction_type: ClientDeduction = "inference"


class DeductRequest(RequestModel):
    amount: int = Field(ge=1, le=MAX_CREDITS, examples=[16])
    deduction_type: ClientDeduction
    related_usage_id: Text | None = Field(None, max_length=100)


class MonthlyCapRequest(RequestModel):
    monthly_cap: int | None = Field(ge=0, le=MAX_CREDITS, description="Credits per calendar month; null removes it")


class AllocateRequest(RequestModel):
    user_id: int = Field(ge=1, le=MAX_ID)
    amount: int = Field(ge=1, le=MAX_CREDITS)
    source: GrantSource = "admin_grant"
    reason: Text = Field(min_length=3, max_length=1000)
    expires_at: UtcDatetime | None = None


class BulkAllocateRequest(RequestModel):
    allocations: list[AllocateRequest] = Field(min_length=1, max_length=1000)


class MonthToDate(ResponseModel):
    credits: int
    tokens: int


class Balance(ResponseModel):
    subscription_credits: int
    bonus_credits: int
    total: int
    monthly_cap: int | None
    month_to_date: MonthToDate


class Cost(ResponseModel):
    model: str
    vendor_cost_usd: str = Field(examples=["0.014000"])
    margin_percentage: str = Field(examples=["40.00"])
    customer_cost_usd: str = Field(examples=["0.019600"])
    credits: int


class Deducted(ResponseModel):
    credits_deducted: int
    balance: Balance


class Charged(Deducted):
    usage_id: int


class MonthlyCap(ResponseModel):
    monthly_cap: int | None
    month_to_date: MonthToDate
    remaining: int | None = Field(description="Credits left under the cap this month (null: no cap)")


class Transaction(ResponseModel):
    id: str = Field(examples=["ded_42"])
    object: Literal["allocation", "deduction"]
    kind: str = Field(description="Allocation source or deduction type")
    amount: int = Field(description="Positive for credits in, negative for credits out")
    balance_after: int
    created_at: datetime
    reason: str | None = None
    expires_at: datetime | None = None
    usage_id: int | None = None
    related_usage_id: str | None = None
    is_test: bool


class UsageFigures(ResponseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    vendor_cost_usd: str
    credits: int


class UsageDay(UsageFigures):
    date: date


class UsageModel(UsageFigures):
    model: str


class UsageStats(ResponseModel):
    start: date
    end: date
    totals: UsageFigures
    by_day: list[UsageDay]
    by_model: list[UsageModel]


class Allocated(ResponseModel):
    status: Literal["granted", "pending_approval"]
    allocation_id: int | None = None
    approval_request_id: int | None = None
    balance: Balance | None = None


class BulkRow(ResponseModel):
    row: int
    user_id: int
    allocation_id: int
    balance_total: int


class BulkAllocated(ResponseModel):
    allocated: int
    total_credits: int
    results: list[BulkRow]


class SystemTotals(ResponseModel):
    credits_issued: int
    credits_spent: int
    active_users: int
    requests: int
    tokens: int
    usage_credits: int
    vendor_cost_usd: str
    customer_cost_usd: str
    margin_usd: str


class SystemDay(ResponseModel):
    date: date
    issued: int
    spent: int


class SpendRow(ResponseModel):
    requests: int
    tokens: int
    credits: int
    vendor_cost_usd: str
    customer_cost_usd: str


class ModelSpend(SpendRow):
    model: str
    vendor: str


class VendorSpend(SpendRow):
    vendor: str


class SystemAnalytics(ResponseModel):
    start: date
    end: date
    include_test: bool
    totals: SystemTotals
    by_day: list[SystemDay]
    by_model: list[ModelSpend]
    by_vendor: list[VendorSpend]


class Spender(ResponseModel):
    user_id: int
    email: str
    is_test: bool
    credits_spent: int
    deductions: int


class TopSpenders(ResponseModel):
    start: date
    end: date
    include_test: bool
    data: list[Spender]


# ---- query strings (lax: "20" is 20) ---------------------------------------------------------

class QueryModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TransactionQuery(QueryModel):
    limit: int = Field(20, ge=1, le=100)
    starting_after: str | None = Field(None, max_length=40, description="id of the last transaction of the "
                                                                         "previous page (alloc_1 or ded_2)")
    type: Literal["allocation", "deduction"] | None = None
    kind: str | None = Field(None, max_length=30, description="An allocation source or a deduction type")
    start: date | None = Field(None, description="From this UTC day (inclusive)")
    end: date | None = Field(None, description="To this UTC day (inclusive)")


class ExportQuery(QueryModel):
    type: Literal["allocation", "deduction"] | None = None
    kind: str | None = Field(None, max_length=30)
    start: date | None = None
    end: date | None = None


class RangeQuery(QueryModel):
    start: date | None = Field(None, description="First UTC day (default: 30 days before end)")
    end: date | None = Field(None, description="Last UTC day (default: today)")


class AnalyticsQuery(RangeQuery):
    include_test: bool = Field(False, description="Include test accounts and test traffic")


class TopSpendersQuery(AnalyticsQuery):
    limit: int = Field(10, ge=1, le=100)
