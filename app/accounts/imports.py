"""CSV import of existing customers (migrating from another billing system).

A dry run validates every row and reports per row; the import itself is all-or-nothing: it
runs the same validation and creates every customer in one transaction, or none. Columns:
email (required), name, external_id. Every customer starts on the free tier (a paid plan is
bought with a card); each creation is audited, and the import as a whole once more.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select

from app.accounts import service
from app.core import audit, testmode
from app.core.errors import DomainError
from app.users.models import User

COLUMNS = ("email", "name", "external_id")
MAX_ROWS = 5000
MAX_BYTES = 2_000_000


@dataclass
class Row:
    number: int
    email: str
    name: str
    external_id: str | None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Report:
    rows: list[Row]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def error_count(self) -> int:
        return sum(1 for row in self.rows if not row.ok)


def parse(text: str) -> list[Row]:
    if not text or not text.strip():
        raise DomainError("empty_file", "The file is empty: give a CSV with a header row (email,name,external_id).",
                          "csv_file")
    if len(text.encode()) > MAX_BYTES:
        raise DomainError("file_too_large", f"The file is larger than {MAX_BYTES // 1_000_000} MB: split it.",
                          "csv_file")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "email" not in header:
        raise DomainError("missing_column", "The header row must name an email column (email,name,external_id).",
                          "csv_file")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise DomainError("unknown_column", f"Unknown column(s): {', '.join(unknown)}. Use email, name, external_id.",
                          "csv_file")
    rows = []
    for number, raw in enumerate(reader, start=2):
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        rows.append(Row(number, values.get("email", ""), values.get("name", ""), values.get("external_id") or None))
        if len(rows) > MAX_ROWS:
            raise DomainError("too_many_rows", f"At most {MAX_ROWS} rows per import: split the file.", "csv_file")
    if not rows:
        raise DomainError("empty_file", "The file has a header but no customers.", "csv_file")
    return rows


def validate(session, rows: list[Row]) -> Report:
    """Per-row errors: a bad email or name, an email or external id taken here or earlier in the file."""
    seen_emails: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for row in rows:
        try:
            row.email = service.normalise_email(row.email, test=testmode.active())
        except DomainError as error:
            row.errors.append(error.message)
        try:
            service.split_name(row.name)
        except DomainError as error:
            row.errors.append(error.message)
        if row.ok:
            if row.email in seen_emails:
                row.errors.append(f"Same email as row {seen_emails[row.email]}.")
            elif service.email_taken(session, row.email):
                row.errors.append("An account with this email exists already.")
            seen_emails.setdefault(row.email, row.number)
        if row.external_id:
            if len(row.external_id) > 255:
                row.errors.append("The external_id is longer than 255 characters.")
            elif row.external_id in seen_ids:
                row.errors.append(f"Same external_id as row {seen_ids[row.external_id]}.")
            elif session.scalar(select(User.id).where(User.external_id == row.external_id)) is not None:
                row.errors.append("A customer with this external_id exists already.")
            seen_ids.setdefault(row.external_id, row.number)
    return Report(rows)


def dry_run(session, text: str) -> Report:
    return validate(session, parse(text))


def run(session, actor, text: str) -> tuple[Report, list[User]]:
    """Create every customer of the file, or none (the caller commits; a refusal changes nothing)."""
    report = dry_run(session, text)
    if not report.ok:
        return report, []
    created = [service.create_customer(session, email=row.email, name=row.name, external_id=row.external_id,
                                       actor=actor) for row in report.rows]
    audit.record(session, "accounts.customers_imported", actor=actor, target_type="users",
                 target_label=f"{len(created)} customers",
                 after={"count": len(created), "test": any(u.is_test for u in created),
                        "emails": [u.email for u in created][:50]})
    return report, created
