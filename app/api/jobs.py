"""Periodic housekeeping of the API: idempotency records, expired OAuth tokens, request counters."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from app.core import clock
from app.core.jobs import periodic
from app.extensions import db


@periodic("purge-api-records", "20 * * * *",
          "Delete idempotency records past their 24 h retention and expired OAuth access tokens")
def purge_api_records(ctx) -> dict:
    from app.api.idempotency import purge_expired
    from app.api.models import OAuthToken

    records = purge_expired(db.session)
    tokens = db.session.execute(delete(OAuthToken).where(OAuthToken.expires_at < clock.now())).rowcount or 0
    db.session.commit()
    return {"idempotency_records": records, "oauth_tokens": tokens}


@periodic("flush-api-request-counts", "* * * * *",
          "Move the API request counts of today and yesterday from Redis into the database")
def flush_api_request_counts(ctx) -> dict:
    from app.api.traffic import flush_redis_counters

    today = clock.now().date()
    return {"requests": flush_redis_counters(db.session, [today - timedelta(days=1), today])}
