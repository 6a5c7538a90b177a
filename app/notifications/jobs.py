"""Deliver the outbox every minute."""
from app.core.jobs import periodic
from app.extensions import db
from app.notifications import service


@periodic("deliver-outbox", cron="* * * * *", description="Send queued emails (retries with backoff)")
def deliver_outbox(job) -> dict:
    return service.deliver_due(db.session)
