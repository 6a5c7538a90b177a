"""What the customer's page shows, read from the domains' services (no rule lives here)."""
from __future__ import annotations

from app.billing.subscriptions import live_subscription
from app.credits.balances import get_balance


def overview(session, user) -> dict:
    return {"subscription": live_subscription(session, user.id), "balance": get_balance(session, user.id)}
