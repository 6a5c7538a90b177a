"""The staff ledger of a customer: sortable columns over allocations and deductions together,
filters kept in every link, and a streamed CSV of the filtered, sorted list."""
from __future__ import annotations

import csv
import io
import re

from app.credits import ledger_list, metering

HX = {"HX-Request": "true"}


def _number(cell: str) -> int:
    """A leading minus is quoted against formula injection by the shared CSV writer ('-35)."""
    return int(cell.removeprefix("'"))


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _credits(body: str) -> list[int]:
    cells = re.findall(r'<td class="amount-(?:in|out)">([^<]+)</td>', body)
    return [int(c.replace(",", "")) for c in cells]


def test_ledger_sorts_filters_and_exports(login_as, priced, funded, session):
    user = funded(subscription=100_000, bonus=700)
    for tokens, ref in ((250, "small"), (5_000, "large"), (1_000, "middle")):
        metering.calculate_and_deduct(session, user.id, "gpt-4-turbo", tokens, tokens, f"req-{ref}")
    session.commit()
    analyst = login_as("analyst")
    base = f"/admin/credits/users/{user.id}"
    newest_first = _credits(analyst.get(base).get_data(as_text=True))
    assert len(newest_first) == 5 and newest_first[-2:] == [700, 100_000]  # the allocations came first
    by_credits = analyst.get(f"{base}?sort=credits").get_data(as_text=True)
    assert _credits(by_credits) == sorted(newest_first) and 'aria-sort="ascending"' in by_credits
    assert _credits(analyst.get(f"{base}?sort=-credits").get_data(as_text=True)) == sorted(newest_first, reverse=True)
    deductions = analyst.get(f"{base}?type=deduction&sort=credits", headers=HX).get_data(as_text=True)
    assert "<html" not in deductions and _credits(deductions) == sorted(c for c in newest_first if c < 0)
    assert re.search(r'<a href="[^"]*type=deduction[^"]*"\s+class="sort-link">Credits', deductions)
    assert _credits(analyst.get(f"{base}?sort=balance").get_data(as_text=True)) == newest_first  # unknown: default
    assert _credits(analyst.get(f"{base}?sort=-").get_data(as_text=True)) == newest_first

    rows = _csv(analyst.get(f"/admin/credits/users/{user.id}/ledger.csv?type=deduction&sort=-credits"))
    assert list(rows[0]) == ledger_list.HEADER
    assert [_number(r["credits"]) for r in rows] == sorted((c for c in newest_first if c < 0), reverse=True)
    assert {r["type"] for r in rows} == {"deduction"} and all(r["created_at"].endswith("+00:00") for r in rows)
    everything = _csv(analyst.get(f"/admin/credits/users/{user.id}/ledger.csv?sort=nonsense"))
    assert [_number(r["credits"]) for r in everything] == newest_first
    assert analyst.get(f"/admin/credits/users/{user.id}/ledger.csv?start=someday").status_code == 422


def test_ledger_pages_by_keyset_in_the_chosen_order(login_as, priced, funded, session):
    user = funded(subscription=100_000)
    for i in range(30):
        metering.calculate_and_deduct(session, user.id, "gpt-4-turbo", 100 + i * 50, 100, f"req-{i:02d}")
    session.commit()
    analyst = login_as("analyst")
    first = analyst.get(f"/admin/credits/users/{user.id}?sort=credits").get_data(as_text=True)
    cursor = re.search(r"cursor=([\w-]+)", first).group(1)
    second = analyst.get(f"/admin/credits/users/{user.id}?sort=credits&cursor={cursor}", headers=HX).get_data(as_text=True)
    seen = _credits(first) + _credits(second)
    assert len(seen) == 31 and seen == sorted(seen) and seen[-1] == 100_000

