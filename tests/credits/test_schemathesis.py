"""Property-based run of the credits API against its own OpenAPI document (schemathesis):
no 5xx, and every answer (success or error) matches the documented status, type and schema.

Driven through hypothesis directly: schemathesis' pytest plugin does not run under pytest 9.
Positive data (valid per the document) and negative data (invalid on purpose) both run.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture
def admin_key(app, priced, funded, make_user, make_api_key):
    from app.credits import balances

    admin = make_user(roles=("admin",))
    balances.allocate(priced, admin.id, 1_000_000, "monthly_allocation")
    funded(subscription=500)  # someone to allocate to
    old = app.config["API_RATE_LIMIT_LIVE"]
    app.config["API_RATE_LIMIT_LIVE"] = "100000 per minute"
    yield make_api_key(admin, key_type="production")
    app.config["API_RATE_LIMIT_LIVE"] = old


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_credits_api_conforms_to_its_document(app, admin_key, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(path_regex="credits")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15  # 13 credits routes + billing's two credit-pack routes
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=admin_key.headers, checks=CHECKS)

        check()
