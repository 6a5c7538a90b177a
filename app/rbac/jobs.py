"""Expiry of temporary roles and overrides, every minute via rq cron."""
from __future__ import annotations

from app.core.jobs import periodic
from app.extensions import db
from app.rbac import service


@periodic("expire-rbac", cron="* * * * *", description="Deactivate expired role assignments and overrides")
def expire_rbac(job) -> dict:
    counts = service.expire_due(db.session)
    db.session.commit()
    return counts
