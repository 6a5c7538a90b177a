"""Validation rules attached to a coupon: parameters checked with pydantic, one evaluator.

The screen preview and the API both reach evaluate() through validation.check(), so a rule
cannot pass on one and fail on the other. The facts a rule needs (credit balance, refunds,
payment methods, earlier purchases) come from small functions in sources.py.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from app.core import audit
from app.core.errors import DomainError, NotFound
from app.coupons import sources
from app.coupons.models import RULE_TYPES, Coupon, ValidationRule

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _domain(value: str) -> str:
    value = value.strip().lower().lstrip("@")
    if not _DOMAIN.match(value):
        raise ValueError(f"'{value}' is not a domain name such as company.com")
    return value


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoParams(_Params):
    pass


class EmailDomainParams(_Params):
    domains: list[Annotated[str, AfterValidator(_domain)]] = Field(min_length=1, max_length=200)


class MinimumBalanceParams(_Params):
    min_balance: int = Field(ge=0, le=1_000_000_000)


class RefundWindowParams(_Params):
    days: int = Field(ge=1, le=3650)


PARAMS: dict[str, type[_Params]] = {
    "first_time_user_only": NoParams,
    "specific_email_domain": EmailDomainParams,
    "minimum_credit_balance": MinimumBalanceParams,
    "exclude_refunded_users": RefundWindowParams,
    "require_payment_method": NoParams,
}
EXAMPLES = {
    "first_time_user_only": "{}",
    "specific_email_domain": '{"domains": ["company.com", "partner.org"]}',
    "minimum_credit_balance": '{"min_balance": 1000}',
    "exclude_refunded_users": '{"days": 90}',
    "require_payment_method": "{}",
}


def parse_params(rule_type: str, raw) -> dict:
    """Check a rule's parameters (a dict or JSON text); raises DomainError on the rule_value field."""
    if rule_type not in PARAMS:
        raise DomainError("invalid_rule_type", f"Choose one of: {', '.join(RULE_TYPES)}.", "rule_type")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise DomainError("invalid_rule_value", f"Parameters must be JSON, e.g. {EXAMPLES[rule_type]}.",
                              "rule_value") from None
    if not isinstance(raw, dict):
        raise DomainError("invalid_rule_value", f"Parameters must be a JSON object, e.g. {EXAMPLES[rule_type]}.",
                          "rule_value")
    try:
        return PARAMS[rule_type].model_validate(raw).model_dump()
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise DomainError("invalid_rule_value",
                          f"{where + ': ' if where else ''}{message} (expected e.g. {EXAMPLES[rule_type]}).",
                          "rule_value") from None


# The form field that carries each rule's parameter (the screen's fields; JSON stays for scripts).
FORM_FIELDS = {"specific_email_domain": "domains", "minimum_credit_balance": "min_balance",
               "exclude_refunded_users": "days"}


def from_form(rule_type: str, values: dict) -> dict | None:
    """A rule's parameters from the form's typed fields ("company.com, partner.org", "1,000",
    "90"); None when the rule's field was left empty (then the JSON field, if any, is read)."""
    name = FORM_FIELDS.get(rule_type)
    raw = (values.get(name) or "").strip() if name else ""
    if not name:
        return {}
    if not raw:
        return None
    if name == "domains":
        return {"domains": [d for d in re.split(r"[\s,;]+", raw) if d]}
    number = raw.replace(",", "").replace("_", "")
    if not number.isdigit():
        raise DomainError("invalid_rule_value", "Enter a whole number such as 1,000.", name)
    return {name: int(number)}


def add(session, actor, coupon: Coupon, rule_type: str, raw_value) -> ValidationRule:
    value = parse_params(rule_type, raw_value)
    rule = ValidationRule(coupon_id=coupon.id, rule_type=rule_type, rule_value=value, is_active=True)
    session.add(rule)
    session.flush()
    audit.record(session, "coupons.rule_added", actor=actor, target=coupon,
                 after={"rule_id": rule.id, "rule_type": rule_type, "rule_value": value})
    return rule


def remove(session, actor, coupon: Coupon, rule_id: int) -> None:
    rule = session.get(ValidationRule, rule_id)
    if rule is None or rule.coupon_id != coupon.id:
        raise NotFound("rule")
    audit.record(session, "coupons.rule_removed", actor=actor, target=coupon,
                 before={"rule_id": rule.id, "rule_type": rule.rule_type, "rule_value": rule.rule_value})
    session.delete(rule)
    session.flush()


def describe(rule: ValidationRule) -> str:
    v = rule.rule_value or {}
    return {
        "first_time_user_only": "First-time customers only",
        "specific_email_domain": "Email domain in " + ", ".join(v.get("domains", [])),
        "minimum_credit_balance": f"Credit balance of at least {v.get('min_balance', 0):,}",
        "exclude_refunded_users": f"No refund in the last {v.get('days')} days",
        "require_payment_method": "A payment method on file",
    }.get(rule.rule_type, rule.rule_type)


def evaluate(session, rule: ValidationRule, user, at: datetime, is_test: bool) -> str | None:
    """None when the user passes the rule, else the message saying why not."""
    params = PARAMS[rule.rule_type].model_validate(rule.rule_value or {})
    if rule.rule_type == "first_time_user_only":
        if sources.has_purchased_before(session, user.id, is_test):
            return "This coupon is for first-time customers only."
    elif rule.rule_type == "specific_email_domain":
        domain = user.email.rsplit("@", 1)[-1].lower()
        if domain not in params.domains:
            return "This coupon is reserved for email addresses at " + ", ".join(params.domains) + "."
    elif rule.rule_type == "minimum_credit_balance":
        balance = sources.credit_balance(session, user.id)
        if balance < params.min_balance:
            return f"This coupon needs a credit balance of at least {params.min_balance} credits."
    elif rule.rule_type == "exclude_refunded_users":
        if sources.refunded_since(session, user.id, at - timedelta(days=params.days)):
            return f"This coupon is not available after a refund in the last {params.days} days."
    elif rule.rule_type == "require_payment_method":
        if not sources.has_payment_method(session, user.id):
            return "This coupon needs a payment method on file."
    return None
