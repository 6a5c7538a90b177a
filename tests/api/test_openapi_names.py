"""Component names of /api/v1/openapi.json are what client generators name their classes
after: each must be a plain class name (no module path, no -Input/-Output), its title the same
name (openapi-python-client names a class by the title and drops a second one of that name), and
every $ref must point at one of them."""
from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from app.api.openapi import component_schemas

CLEAN = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_component_names_are_clean_unique_and_resolve(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert len(schemas) > 50  # the whole document: every route's models
    assert [name for name in schemas if not CLEAN.match(name)] == []
    assert {name: schema.get("title") for name, schema in schemas.items() if schema.get("title") != name} == {}
    refs = set(_refs(doc))
    assert {ref for ref in refs if not ref.startswith("#/components/schemas/")} == set()
    assert {ref for ref in refs if ref.rsplit("/", 1)[1] not in schemas} == set()
    # The two answers that once shared a name: both documented, each under its own.
    ops = doc["paths"]
    for path, name in (("/api/v1/licenses/validate", "LicenseValidation"),
                       ("/api/v1/coupons/validate", "CouponValidation")):
        ref = ops[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{name}"


def test_two_models_of_one_name_are_refused_naming_both():
    def model(module: str, kind: type) -> type[BaseModel]:
        return type("Answer", (BaseModel,), {"__module__": module, "__annotations__": {"ok": kind}})

    first, second = model("app.one.api", bool), model("app.two.api", int)
    with pytest.raises(ValueError, match=r"app\.one\.api\.Answer.*app\.two\.api\.Answer"):
        component_schemas([(first, "serialization"), (second, "serialization")])
