"""The SQL a real route runs, recorded from the route itself, for the bare endpoint to replay.

bench/vs_bare.py compares a route with a bare Flask + psycopg endpoint running "the same
statements". Those statements are not copied from the app's modules (their names move with
every refactor, and app/core/pg.py runs some straight on the psycopg connection, where
SQLAlchemy's echo does not see them): one request is sent through the app in-process while
psycopg's Cursor.execute, Connection.commit and Connection.rollback are wrapped, which sees
every round trip whichever layer makes it. Commits and rollbacks of a connection with no
transaction open (pool resets) send nothing and are left out.

`recipe()` then turns the recording into steps the bare app can run for any request: each
parameter is either a constant, a value of the request (the bearer secret's SHA-256, a body
field), a column of an earlier statement's first row (the key owner's id), or "now" shifted
by the offset it had at capture time.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from datetime import UTC, date, datetime

import psycopg
from psycopg.pq import TransactionStatus


@contextmanager
def recording():
    """Yield a list that fills with ("sql", query, params, columns, first_row, autocommit) and ("commit",) /
    ("rollback",) entries for every round trip made through psycopg meanwhile."""
    log: list[tuple] = []
    execute, commit, rollback = psycopg.Cursor.execute, psycopg.Connection.commit, psycopg.Connection.rollback

    def recorded_execute(self, query, params=None, **kwargs):
        result = execute(self, query, params, **kwargs)
        columns, first = None, None
        if self.description is not None:
            columns = [c.name for c in self.description]
            rows = self.fetchall()
            first = rows[0] if rows else None
            self.scroll(0, mode="absolute")  # client-side cursor: the caller reads the rows as if untouched
        text = query if isinstance(query, str) else query.as_string(self.connection)
        log.append(("sql", text, params, columns, first, self.connection.autocommit))
        return result

    def ending(name, original):
        def recorded(self):
            if self.pgconn.transaction_status != TransactionStatus.IDLE:
                log.append((name,))
            return original(self)
        return recorded

    psycopg.Cursor.execute = recorded_execute
    psycopg.Connection.commit = ending("commit", commit)
    psycopg.Connection.rollback = ending("rollback", rollback)
    try:
        yield log
    finally:
        psycopg.Cursor.execute, psycopg.Connection.commit, psycopg.Connection.rollback = execute, commit, rollback


def request_inputs(secret: str | None, body: dict | None) -> dict:
    """The values of a request a statement may carry: what the bare app derives the same way."""
    inputs = {}
    if secret:
        inputs["secret"] = secret
        inputs["key_hash"] = hashlib.sha256(secret.encode()).hexdigest()
    for name, value in (body or {}).items():
        if isinstance(value, str) and len(value) >= 6:  # long enough not to equal a constant by chance
            inputs[f"body.{name}"] = value
    return inputs


def _param_spec(name: str, value, inputs: dict, earlier: list[tuple], now: datetime):
    for source, known in inputs.items():
        if value == known and isinstance(value, str):
            return {"input": source}
    if isinstance(value, datetime):
        return {"now_plus_s": (value - now).total_seconds()}
    if isinstance(value, date):
        today = now.date()
        if value == today:
            return {"date": "today"}
        if value == today.replace(day=1):
            return {"date": "month"}
        return {"const": value}
    if isinstance(value, int) and not isinstance(value, bool):
        # A value an earlier statement returned (the key owner's id): prefer a column the
        # parameter is named after (user_id_1 <- user_id), then any column holding it.
        matches = [(i, j, col) for i, (columns, row) in enumerate(earlier) if row is not None
                   for j, col in enumerate(columns) if row[j] == value and not isinstance(row[j], bool)]
        if matches:
            named = [m for m in matches if name.startswith(m[2]) or m[2].endswith(name)]
            i, j, _ = (named or matches)[-1]
            return {"row": i, "col": j}
    return {"const": value}


def recipe(log: list[tuple], inputs: dict, now: datetime | None = None) -> list[dict]:
    """Steps for the bare app: {"sql", "params", "row", "autocommit"} with a spec per parameter (and
    the index of its first row among the results, if it returns rows), or {"end": "commit"|"rollback"}."""
    now = now or datetime.now(UTC)
    steps, earlier = [], []
    for entry in log:
        if entry[0] != "sql":
            steps.append({"end": entry[0]})
            continue
        _, text, params, columns, first, autocommit = entry
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"positional parameters are not replayed: {text}")
        specs = {k: _param_spec(k, v, inputs, earlier, now) for k, v in (params or {}).items()}
        steps.append({"sql": text, "params": specs, "row": len(earlier) if columns else None,
                      "autocommit": autocommit})
        if columns:
            earlier.append((columns, first))
    return steps


def printable(steps: list[dict]) -> str:
    lines = []
    for step in steps:
        if "end" in step:
            lines.append(step["end"].upper() + ";")
        else:
            lines.append(("-- (autocommit)\n" if step["autocommit"] else "") + " ".join(step["sql"].split()) + ";")
            lines.append("    -- " + ", ".join(f"{k}={v}" for k, v in step["params"].items()))
    return "\n".join(lines)
