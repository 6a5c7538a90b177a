"""Billing's background jobs: thin wrappers around the services, each committing its own work."""
from __future__ import annotations

from datetime import timedelta

from app.billing import allocation, collection, metrics, renewal, webhooks
from app.core import clock
from app.core.jobs import periodic
from app.extensions import db


@periodic("billing-renewals", cron="5 * * * *", description="Open due periods: invoice them and charge the card on file")
def run_renewals(job) -> dict:
    return renewal.run(db.session)


@periodic("billing-dunning", cron="20 * * * *", description="Retry failed payments that are due; end expired grace periods")
def run_dunning(job) -> dict:
    return collection.run_due_retries(db.session)


@periodic("billing-allocations", cron="10 * * * *", description="Allocate each live subscription's period credits (once per period)")
def run_allocations(job) -> dict:
    done = 0
    for sub in allocation.due_subscriptions(db.session):
        if allocation.allocate_period(db.session, sub) is not None:
            done += 1
        db.session.commit()
    return {"allocated": done}


@periodic("billing-reconcile", cron="*/15 * * * *", description="Finish charges a crash or a Stripe outage left unfinished")
def reconcile_payments(job) -> dict:
    return collection.reconcile_unfinished(db.session)


REVENUE_REBUILD_DAYS = 3  # a charge can succeed (webhook) a day or two after it was asked for


@periodic("billing-daily-revenue", cron="25 0 * * *",
          description="Build the money collected on each of the last 3 days (re-runnable)")
def daily_revenue(job) -> dict:
    today = clock.now().date()
    built = []
    for back in range(REVENUE_REBUILD_DAYS, 0, -1):
        built.append(metrics.build_revenue_day(db.session, today - timedelta(days=back)))
        db.session.commit()
    return {"days": built}


@periodic("stripe-events", cron="* * * * *", description="Process Stripe webhooks that were deferred or not yet processed")
def process_pending_events(job) -> dict:
    statuses: dict[str, int] = {}
    for event_id in webhooks.deferred(db.session):
        status = webhooks.process(db.session, event_id)
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def process_stripe_event(job, event_id: str) -> dict:
    """Enqueued by the webhook endpoint for each new event."""
    return {"status": webhooks.process(db.session, event_id)}
