"""Request validation and response shaping with pydantic v2, and the metadata the OpenAPI
document is built from (the same models validate, serialise and document: they cannot drift).

- `RequestModel`: strict (no float for an int, no string for a bool), unknown fields refused.
- `DecimalStr`: money and prices travel as decimal strings ("99.99"), never JSON numbers.
- `parse_body(Model)` (a route's body=, app/api/pipeline.py): malformed JSON (or JSON nested
  too deep) is 400 `invalid_json`, a bad field (an integer past BIGINT, a date outside
  app/core/bounds.py's range) is 422 with `param` = the first bad field; the view does not
  run, so nothing is written. `validate_data(Model, dict)` does the same for a query or form.
- `query_params(Model)`: a query model's OpenAPI parameters.
- `respond(Model, obj, status)`: serialises through the response model.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from app.core import bounds, current
from app.core.errors import DomainError

_DECIMAL = re.compile(r"^-?\d{1,12}(\.\d{1,6})?$")


def _decimal_string(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _DECIMAL.match(value.strip()):
        return Decimal(value.strip())
    raise ValueError('must be a decimal string such as "99.99"')


DecimalStr = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL.pattern, "examples": ["99.99"]}, mode="validation"),
    WithJsonSchema({"type": "string", "examples": ["99.99"]}, mode="serialization"),
]
UtcDatetime = AwareDatetime


class RequestModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(ResponseModel):
    type: str = Field(examples=["invalid_request_error"])
    code: str = Field(examples=["parameter_invalid"])
    message: str
    param: str | None = None


class ErrorBody(ResponseModel):
    """Every API failure: {"error": {...}, "request_id": "..."}."""

    error: ErrorDetail
    request_id: str | None = None


_INT_ERRORS = {"int_type", "int_parsing", "int_from_float"}


def _first_error(error: ValidationError) -> DomainError:
    first = error.errors(include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    message = first["msg"].removeprefix("Value error, ")
    if kind == "missing":
        code, message = "parameter_missing", f"Missing required param: {param}."
    elif kind == "extra_forbidden":
        code, message = "parameter_unknown", f"Received unknown parameter: {param}."
    elif kind in _INT_ERRORS:
        code, message = "parameter_invalid_integer", f"{param} must be a whole number."
    else:
        code, message = "parameter_invalid", f"{param}: {message}" if param else message
    return DomainError(code, message, param, status=422)


def parse_body(model: type[BaseModel]) -> BaseModel:
    """Validate the JSON body against model; raises DomainError (400 or 422)."""
    raw = current.request().get_data(cache=True) or b"{}"
    if bounds.cannot_nest_too_deep(raw):
        try:
            body = model.model_validate_json(raw)
        except ValidationError:
            pass  # the path below parses it once more and says what is wrong, as it always did
        else:
            bounds.check_values(body)
            return body
    try:
        data = bounds.loads_json(raw)
    except (ValueError, UnicodeDecodeError):
        raise DomainError("invalid_json", "The request body is not valid JSON (or nested more than "
                          f"{bounds.MAX_JSON_DEPTH} deep).", None, status=400) from None
    if not isinstance(data, dict):
        raise DomainError("invalid_json", "The request body must be a JSON object.", None, status=400)
    try:
        body = model.model_validate_json(raw)
    except ValidationError as error:
        raise _first_error(error) from None
    bounds.check_values(body)  # every integer fits a BIGINT, every date a sane calendar range
    return body


def validate_data(model: type[BaseModel], data: dict) -> BaseModel:
    """Validate already-parsed data (a form, query args) with the same error shape."""
    try:
        parsed = model.model_validate(data)
    except ValidationError as error:
        raise _first_error(error) from None
    bounds.check_values(parsed)
    return parsed


def query_params(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[dict]:
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


def dump(model: type[BaseModel], obj: Any) -> dict:
    item = obj if isinstance(obj, model) else model.model_validate(obj, from_attributes=True)
    return item.model_dump(mode="json")


def respond(model: type[BaseModel], obj: Any, status: int = 200):
    """The answer as the response model serialises it, in one pass in pydantic's core (no dict
    made and encoded again by Flask's JSON provider: ~6% of a balance read's instructions). The
    same JSON values as jsonify(dump(...)); fields in the model's order, non-ASCII text as UTF-8."""
    item = obj if isinstance(obj, model) else model.model_validate(obj, from_attributes=True)
    return current.app().response_class(item.model_dump_json() + "\n", status=status, mimetype="application/json")
