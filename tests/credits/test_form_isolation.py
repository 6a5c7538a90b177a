"""The credits page's forms are separate (issue 18: a refused grant filled the Deduct form with
the rejected amount and reason, and the forms shared element ids)."""
from __future__ import annotations

import re
from collections import Counter


def test_a_refused_grant_leaves_the_deduct_form_empty_and_ids_are_unique(login_as, funded):
    user = funded(subscription=1_000)
    admin = login_as("admin")
    refused = admin.post(f"/admin/credits/users/{user.id}/grant", data={"amount": "-5", "reason": "Typed reason"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    deduct = body[body.index('id="deduct"'):]
    deduct = deduct[:deduct.index("</form>")]
    assert "Typed reason" not in deduct and 'value="-5"' not in deduct
    grant = body[body.index('id="grant"'):]
    assert "Typed reason" in grant[:grant.index("</form>")]  # the refused form keeps what was typed
    ids = Counter(re.findall(r'\sid="([^"]+)"', body))
    assert [i for i, n in ids.items() if n > 1] == []
