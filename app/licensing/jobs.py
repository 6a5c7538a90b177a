"""Licenses past their expires_at move to `expired` (validation already answers EXPIRED by date)."""
from __future__ import annotations

from app.core.jobs import periodic
from app.extensions import db
from app.licensing import service


@periodic("expire-licenses", cron="5 * * * *", description="Mark licenses past their expiry date as expired")
def expire_licenses(job) -> dict:
    count = service.expire_due(db.session)
    db.session.commit()
    return {"expired": count}
