"""`flask credits ...`: BYOK key rotation and summary backfills."""
from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from app.core import audit, jobs
from app.extensions import db

credits_cli = AppGroup("credits", help="Credits: BYOK key rotation, daily summaries.")


@credits_cli.command("rotate-byok-keys")
def rotate_byok_keys():
    """Re-encrypt every BYOK vendor key with the first key of BYOK_ENCRYPTION_KEYS.

    Rotation: put a new Fernet key in front of the list (new,old), run this, then drop the old key.
    """
    from app.credits import byok

    count = byok.rotate_all(db.session)
    audit.record(db.session, "credits.byok_keys_rotated", actor="cli", target_type="vendor_keys",
                 after={"keys": count})
    db.session.commit()
    click.echo(f"Re-encrypted {count} vendor key(s) with the current primary key.")


@credits_cli.command("build-summaries")
@click.option("--start", "first", required=True, help="First UTC day, YYYY-MM-DD")
@click.option("--end", "last", default=None, help="Last UTC day (default: the first)")
def build_summaries(first: str, last: str | None):
    """(Re)build the daily token and credit summaries for a range of days."""
    try:
        date.fromisoformat(first)
        if last:
            date.fromisoformat(last)
    except ValueError:
        raise click.BadParameter("dates are YYYY-MM-DD") from None
    record = jobs.enqueue("credits-daily-summaries", "app.credits.jobs:build_days", first, last)
    click.echo(f"credits-daily-summaries {first}..{last or first}: {record.status}")
