"""Nightly credit jobs: the daily summaries of the day that just ended (UTC)."""
from __future__ import annotations

from datetime import date, timedelta

from app.core import clock
from app.core.jobs import periodic
from app.credits import summaries
from app.extensions import db


@periodic("credits-daily-summaries", cron="20 0 * * *",
          description="Build yesterday's token and credit usage summaries (re-runnable)")
def daily_summaries(job) -> dict:
    return build_days(job, (clock.now().date() - timedelta(days=1)).isoformat())


def build_days(job, first: str, last: str | None = None) -> dict:
    """Build every day from first to last (ISO dates), committing after each day."""
    start = date.fromisoformat(first)
    end = date.fromisoformat(last) if last else start
    days = (end - start).days + 1
    results = []
    for i in range(days):
        results.append(summaries.build_day(db.session, start + timedelta(days=i)))
        db.session.commit()
        job.progress(i + 1, days, f"built {results[-1]['day']}")
    return {"days": results}
