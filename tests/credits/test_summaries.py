"""Daily summaries: one set-based statement each, re-runnable with identical results,
production and test rows apart; the nightly job builds yesterday."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.core import clock
from app.credits import balances, metering, summaries
from app.credits.models import CreditUsageDaily, SummaryRun, TokenUsageDaily
from tests.credits.conftest import utc

DAY = date(2025, 11, 8)


def _day_of_traffic(priced, funded):
    real = funded(subscription=10_000, tier="pro", at=utc(2025, 11, 1))
    tester = funded(subscription=1_000, tier="free", test=True, at=utc(2025, 11, 1))
    at = utc(2025, 11, 8, 10)
    for i in range(3):
        metering.calculate_and_deduct(priced, real.id, "gpt-4-turbo", 500, 300, f"r{i}", at=at)
    metering.calculate_and_deduct(priced, real.id, "claude-3.5-sonnet", 1500, 800, "c1", at=at)
    metering.calculate_and_deduct(priced, tester.id, "llama-2-70b", 500, 300, "t1", at=at)
    balances.allocate(priced, real.id, 333, "promotional_bonus", at=at)
    metering.calculate_and_deduct(priced, real.id, "gpt-4-turbo", 500, 300, "next-day", at=utc(2025, 11, 9, 0, 0, 1))
    return real, tester


def snapshot(session):
    tokens = [(r.user_id, r.model_name, r.is_test, r.request_count, r.input_tokens, r.output_tokens,
               r.vendor_cost_usd, r.customer_cost_usd, r.credits) for r in summaries.token_rows(session, DAY, True)]
    credit = [(r.user_id, r.is_test, r.credits_allocated, r.credits_deducted, r.balance_eod)
              for r in summaries.credit_rows(session, DAY, True)]
    return tokens, credit


def test_summaries_of_a_day(priced, frozen_clock, funded):
    real, tester = _day_of_traffic(priced, funded)
    result = summaries.build_day(priced, DAY)
    assert result == {"day": "2025-11-08", "token_rows": 3, "credit_rows": 2}
    gpt = priced.get(TokenUsageDaily, (DAY, real.id, "gpt-4-turbo", False))
    assert (gpt.request_count, gpt.input_tokens, gpt.output_tokens, gpt.vendor_cost_usd, gpt.credits) == (
        3, 1500, 900, Decimal("0.042"), 147)
    assert gpt.customer_cost_usd == Decimal("0.0588")
    credit = priced.get(CreditUsageDaily, (DAY, real.id, False))
    assert (credit.credits_allocated, credit.credits_deducted) == (333, 147 + 58)
    assert credit.balance_eod == 10_000 + 333 - 147 - 58
    assert [r.user_id for r in summaries.token_rows(priced, DAY)] == [real.id, real.id]  # production only
    assert summaries.token_rows(priced, DAY, include_test=True)[-1].is_test


def test_rebuilding_a_day_gives_identical_rows(priced, frozen_clock, funded):
    _day_of_traffic(priced, funded)
    summaries.build_day(priced, DAY)
    first = snapshot(priced)
    clock.advance(timedelta(hours=3))
    summaries.build_day(priced, DAY)
    priced.expire_all()
    assert snapshot(priced) == first
    assert len(priced.scalars(select(SummaryRun)).all()) == 1


@pytest.mark.postgres  # the job commits; only PostgreSQL's outer test transaction undoes that
def test_the_nightly_job_builds_yesterday(app, priced, funded):
    from app.core.jobs import PERIODIC
    from app.jobs_registry import load

    load()
    assert "credits-daily-summaries" in PERIODIC
    clock.freeze(utc(2025, 11, 9, 0, 20))
    try:
        _day_of_traffic(priced, funded)
        from app.credits.jobs import daily_summaries

        class Job:
            def progress(self, *args):
                pass

        assert daily_summaries(Job())["days"][0]["day"] == "2025-11-08"
        assert len(summaries.token_rows(priced, DAY, True)) == 3
    finally:
        clock.reset()
