"""GET /api/v1/openapi.json: an OpenAPI 3.1 document built from the routes' own pydantic models.

Each API route is declared once with app/api/pipeline.py's route(), which keeps its OpenAPI
facts (Route.doc); this module walks the URL map and turns them into paths, request bodies,
responses, the error schema and the bearer security scheme.

Component names are what client generators name their classes after, so each is a model's
plain class name: two models of one name (pydantic would prefix both with their module path)
or a model whose request and response schemas differ (`-Input`/`-Output`) fail the build.
"""
from __future__ import annotations

import re

from flask import Flask, current_app, jsonify
from pydantic.json_schema import models_json_schema

from app.api import api_bp
from app.api.pipeline import PUBLIC, route
from app.api.schemas import ErrorBody

REF = "#/components/schemas/{model}"
_CLEAN_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_PARAM_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"}}
_ERROR_TEXT = {400: "Malformed request (invalid JSON, bad header)", 401: "Missing, invalid, revoked or expired key",
               403: "The key's owner lacks the permission or scope", 404: "No such object",
               409: "Idempotency-Key reused with another request, or a conflict",
               422: "A parameter is missing or invalid (`param` names it)", 429: "Rate limited (see Retry-After)",
               402: "The card was declined (nothing was bought or changed)",
               503: "The payment provider cannot be reached; nothing was charged"}


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    params = []

    def repl(match):
        converter, name = match.group(1) or "string", match.group(2)
        params.append({"name": name, "in": "path", "required": True,
                       "schema": _PARAM_TYPES.get(converter, {"type": "string"})})
        return "{" + name + "}"

    return _CONVERTER.sub(repl, rule), params


def _error_response(status: int) -> dict:
    return {"description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}


def _list_schema(item_ref: dict) -> dict:
    return {"type": "object", "required": ["object", "url", "has_more", "data"],
            "properties": {"object": {"type": "string", "const": "list"}, "url": {"type": "string"},
                           "has_more": {"type": "boolean"}, "data": {"type": "array", "items": item_ref}}}


def _operation(endpoint: str, method: str, spec: dict, path_params: list[dict], refs: dict) -> dict:
    op: dict = {"operationId": f"{endpoint.split('.', 1)[1]}_{method}",
                "summary": spec.get("summary") or endpoint, "tags": spec.get("tags") or ["api"],
                "responses": {}}
    if spec.get("description"):
        op["description"] = spec["description"]
    params = list(path_params)
    if spec.get("list_of") is not None:
        params += [{"name": "limit", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                   {"name": "starting_after", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "id of the last object of the previous page"}]
        op["responses"]["200"] = {"description": "A page, newest first",
                                  "content": {"application/json": {"schema": _list_schema(
                                      refs[(spec["list_of"], "serialization")])}}}
    params += spec.get("query_params") or []
    if spec.get("idempotent"):
        params.append({"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string",
                       "maxLength": 255}, "description": "Replays the first response for 24 hours at least"})
    if params:
        op["parameters"] = params
    model = spec.get("request_model")
    if model is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": refs[(model, "validation")]}}}
    responses = dict(spec.get("responses") or {})
    if spec.get("idempotent") and 201 in responses:
        responses.setdefault(200, responses[201])  # an idempotent replay answers 200 with the same body
    for status, out in responses.items():
        content = {"application/json": {"schema": refs[(out, "serialization")]}} if out is not None else None
        op["responses"][str(status)] = {"description": "Created" if status == 201 else "OK"}
        if content:
            op["responses"][str(status)]["content"] = content
    if not op["responses"]:
        op["responses"]["200"] = {"description": "OK"}
    errors = set()
    if model is not None:
        errors |= {400, 422}
    if spec.get("security"):
        errors |= {401, 403, 429}
        op["security"] = [{"bearerAuth": []}]
        if spec.get("permission"):
            op["x-permission"] = spec["permission"]
    else:
        op["security"] = []
    if spec.get("idempotent"):
        errors |= {400, 409}  # a malformed Idempotency-Key is a 400
    errors |= set(spec.get("errors") or ())  # route-specific failures, e.g. 402 for a declined card
    if path_params:
        errors.add(404)
    for status in sorted(errors):
        op["responses"][str(status)] = _error_response(status)
    return op


def component_schemas(models: list[tuple[type, str]]) -> tuple[dict, dict]:
    """pydantic's (refs, component schemas) for the models; ValueError naming the models whose
    component name would not be their own class name."""
    refs, defs = models_json_schema(models, ref_template=REF)
    schemas = defs.get("$defs", {})
    unclean = sorted(name for name, schema in schemas.items()
                     if not _CLEAN_NAME.match(name) or schema.get("title", name) != name)
    if unclean:
        raise ValueError("OpenAPI component names must be unique class names: rename the models "
                         f"{', '.join(name.replace('__', '.') for name in unclean)} to say what they are "
                         "(a module path means two models share a name; -Input/-Output, one model whose "
                         "request and response schemas differ)")
    return refs, schemas


def build_document(app: Flask) -> dict:
    routes = []
    models: set[tuple[type, str]] = {(ErrorBody, "serialization")}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(api_bp.name + "."):
            continue
        declared = getattr(app.view_functions[rule.endpoint], "route", None)
        spec = declared.doc if declared is not None else {}
        routes.append((rule, spec))
        if spec.get("request_model") is not None:
            models.add((spec["request_model"], "validation"))
        for out in list((spec.get("responses") or {}).values()) + [spec.get("list_of")]:
            if out is not None:
                models.add((out, "serialization"))
    ordered = sorted(models, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, schemas = component_schemas(ordered)
    paths: dict = {}
    for rule, spec in sorted(routes, key=lambda pair: pair[0].rule):
        path, params = _openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.endpoint, method.lower(), spec, params, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Rephlo Admin API", "version": app.config["APP_VERSION"],
                 "description": "Client API of Rephlo Admin. Keys: rph_live_ (production), rph_test_ "
                                "(sandbox), rph_dev_ (development); test traffic answers X-Test-Mode: true."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearerAuth": {
                           "type": "http", "scheme": "bearer",
                           "description": "An API key (rph_live_..., rph_test_..., rph_dev_...) or an OAuth "
                                          "access token from POST /api/v1/oauth/token"}}},
    }


@route("GET", "/openapi.json", auth=PUBLIC, summary="This OpenAPI document", tags=["meta"])
def openapi_document():
    doc = current_app.extensions.get("rephlo_openapi")
    if doc is None:
        doc = current_app.extensions["rephlo_openapi"] = build_document(current_app)
    return jsonify(doc)
