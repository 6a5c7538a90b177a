"""Tiers are sold only with a margin effective now (credits/margins.require_margin): fixtures that
sell tiers give every tier without one a 0% margin from 2020 on."""
from __future__ import annotations

from datetime import UTC, datetime

SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def price_every_tier(session) -> None:
    from app.credits import margins
    from app.credits.models import TIERS

    for tier in TIERS:
        if tier != "perpetual" and margins.current(session, tier, SINCE) is None:
            margins.set_margin(session, None, tier, "fixed_percentage", "0", "test fixture: every tier priced",
                               effective_date=SINCE, at=SINCE)
