"""Reading the ledgers at scale, and the nightly summaries over a million rows.

    .venv/bin/python bench/ledger_scale.py [--rows 1000000] [--repeat 30]

1. One customer with --rows usage rows and as many deductions over the last 100 days:
   GET /api/v1/credits/transactions first page and a page 5,000 deep (starting_after the
   100,000th newest transaction), GET /api/v1/credits/usage/stats over 30 days (with the
   daily summaries built, and for comparison without them). Server time = the app handling
   the request in process (Flask test client on the same PostgreSQL), median and p95.
2. One day with --rows usage rows and as many deductions across 1,000 users and 4 models:
   the daily summary build (both summaries), twice, with identical results.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, app_for, fresh_database, populate  # noqa: E402

DAYS = 100


def fill_heavy_user(db, user_id: int, rows: int, price_id: int) -> None:
    """rows usage rows and rows deductions for one user, evenly over the last DAYS days."""
    from sqlalchemy import text

    db.session.execute(text("""
        INSERT INTO token_usage (user_id, request_id, model_price_id, model_name, vendor_name, tier, input_tokens,
            output_tokens, vendor_cost_usd, margin_percentage, customer_cost_usd, credits, is_test, created_at)
        SELECT :uid, 'heavy-' || g, :price, 'gpt-4-turbo', 'openai', 'pro', 500, 300, 0.014, 40, 0.0196, 49, false,
               date_trunc('day', now()) - interval '100 days' + (g * (interval '100 days' / :rows))
        FROM generate_series(1, :rows) g"""), {"uid": user_id, "price": price_id, "rows": rows})
    db.session.execute(text("""
        INSERT INTO credit_deductions (user_id, amount, deduction_type, usage_id, related_usage_id, balance_after,
            is_test, created_at)
        SELECT user_id, credits, 'inference', id, request_id, 0, false, created_at FROM token_usage
        WHERE user_id = :uid"""), {"uid": user_id})
    db.session.commit()


def fill_big_day(db, user_ids: list[int], rows: int, prices: dict[str, tuple[int, str]], day_offset: int) -> None:
    """rows usage rows and deductions on one day (day_offset days ago) across users and models."""
    from sqlalchemy import text

    models = list(prices.items())
    cases = " ".join(f"WHEN {i} THEN '{m}'" for i, (m, _) in enumerate(models))
    vendor = " ".join(f"WHEN {i} THEN '{v}'" for i, (_, (_, v)) in enumerate(models))
    pid = " ".join(f"WHEN {i} THEN {p}" for i, (_, (p, _)) in enumerate(models))
    db.session.execute(text(f"""
        INSERT INTO token_usage (user_id, request_id, model_price_id, model_name, vendor_name, tier, input_tokens,
            output_tokens, vendor_cost_usd, margin_percentage, customer_cost_usd, credits, is_test, created_at)
        SELECT :lo + (g % :n), 'day-' || g, CASE g % 4 {pid} END, CASE g % 4 {cases} END, CASE g % 4 {vendor} END,
               'pro', 100 + g % 900, 50 + g % 400, 0.0025 + (g % 7) * 0.000001, 40, 0.0035, 9 + g % 3, g % 10 = 0,
               date_trunc('day', now()) - make_interval(days => :off) + (g * (interval '1 day' / :rows))
        FROM generate_series(1, :rows) g"""), {"lo": user_ids[0], "n": len(user_ids), "rows": rows, "off": day_offset})
    db.session.execute(text("""
        INSERT INTO credit_deductions (user_id, amount, deduction_type, usage_id, related_usage_id, balance_after,
            is_test, created_at)
        SELECT user_id, credits, 'inference', id, request_id, 0, is_test, created_at FROM token_usage
        WHERE request_id LIKE 'day-%'"""))
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def timed(client, url: str, headers: dict, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "max_ms": round(times[-1], 2)}


def explain_request(app, client, path: str, headers: dict) -> list[str]:
    """EXPLAIN ANALYZE the ledger queries the app really sends for one request."""
    from sqlalchemy import event

    from app.extensions import db

    with app.app_context():
        engine = db.engine
    seen = []

    def capture(conn, cursor, statement, params, context, executemany):
        if "FROM credit_deductions" in statement or "FROM credit_allocations" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    client.get(path, headers=headers)
    event.remove(engine, "before_cursor_execute", capture)
    lines = []
    with engine.connect() as conn:
        for statement, params in seen:
            cursor = conn.connection.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines += [row[0] for row in cursor.fetchall()] + ["--"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    url = fresh_database("rephlo_bench_ledger")
    app = app_for(url)
    keys = populate(app, 1000)
    from sqlalchemy import text

    from app.core import clock
    from app.credits import summaries
    from app.extensions import db

    results = {"rows": args.rows}
    with app.app_context():
        prices = {m: (pid, v) for m, pid, v in db.session.execute(text(
            "SELECT p.model_name, p.id, v.vendor_name FROM model_prices p JOIN providers v ON v.id = p.provider_id"))}
        heavy_id, heavy_key = keys[0]
        t0 = time.perf_counter()
        fill_heavy_user(db, heavy_id, args.rows, prices["gpt-4-turbo"][0])
        fill_big_day(db, [k[0] for k in keys], args.rows, prices, DAYS + 10)
        results["load_seconds"] = round(time.perf_counter() - t0, 1)
        total = db.session.scalar(text("SELECT (SELECT count(*) FROM token_usage) + (SELECT count(*) FROM credit_deductions)"))
        results["ledger_rows_total"] = total

        # The summaries job over the big day: twice, identical.
        big_day = (clock.now() - timedelta(days=DAYS + 10)).date()
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            counts = summaries.build_day(db.session, big_day)
            db.session.commit()
            runs.append(round(time.perf_counter() - t0, 2))
            snapshot = db.session.execute(text(
                "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM token_usage_daily t WHERE day = :d"),
                {"d": big_day}).scalar()
            runs.append(snapshot)
        results["summary_day"] = {"day": big_day.isoformat(), "usage_rows": args.rows, "deduction_rows": args.rows,
                                  **counts, "seconds_first": runs[0], "seconds_rerun": runs[2],
                                  "identical": runs[1] == runs[3]}
        print(json.dumps(results["summary_day"]), flush=True)

        # The heavy user's history: summaries for every day but today.
        t0 = time.perf_counter()
        first = clock.now().date() - timedelta(days=DAYS)
        for i in range(DAYS):
            summaries.build_day(db.session, first + timedelta(days=i))
            db.session.commit()
        results["summaries_100_days_seconds"] = round(time.perf_counter() - t0, 1)
        deep_id = db.session.scalar(text(
            "SELECT id FROM credit_deductions WHERE user_id = :u ORDER BY created_at DESC, id DESC OFFSET 99999 LIMIT 1"),
            {"u": heavy_id})

    client = app.test_client()
    headers = {"Authorization": f"Bearer {heavy_key}"}
    app.config["API_RATE_LIMIT_LIVE"] = "1000000 per minute"
    end = clock.now().date()
    start = end - timedelta(days=29)
    measures = {
        "transactions_first_page": "/api/v1/credits/transactions?limit=20",
        "transactions_page_5000": f"/api/v1/credits/transactions?limit=20&starting_after=ded_{deep_id}",
        "usage_stats_30_days": f"/api/v1/credits/usage/stats?start={start}&end={end}",
    }
    for name, path in measures.items():
        timed(client, path, headers, 3)  # warm-up
        results[name] = timed(client, path, headers, args.repeat)
        print(name, json.dumps(results[name]), flush=True)
    with app.app_context():  # the same stats with no summaries at all: every row read live
        db.session.execute(text("DELETE FROM credit_summary_runs"))
        db.session.commit()
    results["usage_stats_30_days_without_summaries"] = timed(client, measures["usage_stats_30_days"], headers, 5)
    print("usage_stats_30_days_without_summaries", json.dumps(results["usage_stats_30_days_without_summaries"]))
    results["deep_page_plan"] = explain_request(app, client, measures["transactions_page_5000"], headers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ledger_scale.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n".join(results["deep_page_plan"]))


if __name__ == "__main__":
    main()
