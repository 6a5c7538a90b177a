"""The transaction list (allocations and deductions, keyset paginated) and usage stats."""
from datetime import date, timedelta

import pytest

from app.core import clock
from app.core.errors import DomainError
from app.credits import balances, ledger, metering, summaries
from tests.credits.conftest import utc


def _history(priced, funded, n=25):
    user = funded(subscription=100_000, at=utc(2025, 11, 1))
    at = utc(2025, 11, 2, 9)
    for i in range(n):
        metering.calculate_and_deduct(priced, user.id, "gpt-4-turbo", 500, 300, f"r{i}", at=at)
        if i % 5 == 0:
            balances.allocate(priced, user.id, 7, "coupon", at=at)  # same timestamp: ties broken stably
        at += timedelta(hours=1)
    return user


def test_pages_walk_every_transaction_once_newest_first(priced, frozen_clock, funded):
    user = _history(priced, funded)
    seen, cursor = [], None
    while True:
        page = ledger.transactions(priced, user.id, limit=7, starting_after=cursor)
        seen += page.items
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert len(seen) == 25 + 5 + 1
    assert len({i["id"] for i in seen}) == len(seen)
    keys = [(i["created_at"], i["_src"], i["_id"]) for i in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[-1]["kind"] == "monthly_allocation" and seen[0]["amount"] == -49


def test_filters(priced, frozen_clock, funded):
    user = _history(priced, funded)
    coupons = ledger.transactions(priced, user.id, limit=100, kind="coupon").items
    assert [i["amount"] for i in coupons] == [7] * 5
    deductions = ledger.transactions(priced, user.id, limit=100, type_="deduction").items
    assert len(deductions) == 25 and all(i["object"] == "deduction" for i in deductions)
    one_day = ledger.transactions(priced, user.id, limit=100, since=date(2025, 11, 3), until=date(2025, 11, 3)).items
    assert len(one_day) == 10 + 2 and {i["created_at"].date() for i in one_day} == {date(2025, 11, 3)}
    for kwargs, code in (({"type_": "refund"}, "invalid_type"), ({"kind": "bogus"}, "invalid_kind"),
                         ({"starting_after": "not-a-cursor"}, "invalid_cursor")):
        with pytest.raises(DomainError) as err:
            ledger.transactions(priced, user.id, **kwargs)
        assert err.value.code == code


def test_export_iterates_everything(priced, frozen_clock, funded):
    user = _history(priced, funded)
    assert len(list(ledger.iterate_transactions(priced, user.id, batch=4))) == 31


def test_usage_stats_are_the_same_from_summaries_and_from_the_ledger(priced, frozen_clock, funded):
    user = _history(priced, funded)
    start, end = date(2025, 11, 1), date(2025, 11, 9)
    live = ledger.usage_stats(priced, user.id, start, end)
    assert live["totals"] == {"requests": 25, "input_tokens": 12_500, "output_tokens": 7_500,
                              "vendor_cost_usd": "0.350000", "credits": 25 * 49}
    assert [d["requests"] for d in live["by_day"]] == [15, 10]
    assert live["by_model"][0]["model"] == "gpt-4-turbo"
    summaries.build_day(priced, date(2025, 11, 2))  # one day from summaries, the other live
    assert ledger.usage_stats(priced, user.id, start, end) == live


def test_date_ranges(frozen_clock):
    today = clock.now().date()
    assert ledger.date_range(None, None, today) == (today - timedelta(days=29), today)
    with pytest.raises(DomainError):
        ledger.date_range(date(2025, 2, 1), date(2025, 1, 1), today)
    with pytest.raises(DomainError):
        ledger.date_range(date(2020, 1, 1), date(2025, 1, 1), today)
