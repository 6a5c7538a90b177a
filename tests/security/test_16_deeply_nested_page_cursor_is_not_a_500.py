"""A page cursor is base64 of a small JSON array; one nesting thousands of arrays deep made
json.loads raise RecursionError, a 500 on the staff lists (users, test accounts, API keys,
invoices) and in the ledger's decoder. The three cursor decoders read through bounds.loads_json:
an invalid cursor like any other."""
from __future__ import annotations

import base64

import pytest

from app.core import pagination, sorting
from app.core.errors import DomainError
from app.credits import ledger

DEEP = base64.urlsafe_b64encode(("[" * 3000 + "]" * 3000).encode()).decode().rstrip("=")


@pytest.mark.parametrize("decode", [pagination.decode_cursor, sorting._decode, ledger._decode],
                         ids=["pagination", "sorting", "ledger"])
def test_each_decoder_refuses_a_deep_cursor_as_invalid(decode):
    with pytest.raises(DomainError) as refused:
        decode(DEEP)
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize("url", ["/admin/users", "/admin/test-data/users", "/admin/api-keys", "/admin/billing/invoices"])
def test_staff_lists_answer_a_deep_cursor_without_a_500(login_as, url):
    response = login_as("admin").get(f"{url}?cursor={DEEP}")
    assert response.status_code < 500
