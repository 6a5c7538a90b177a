"""The admin dashboard at scale: its server time with 100,000 users and a million ledger rows.

    .venv/bin/python bench/dashboard.py [--users 100000] [--rows 1000000] [--days 60] [--repeat 30]

Data (PostgreSQL, 1% of it test data, as seed 000 expects): --users customers joined over the
last 100 days, one subscription each (tiers and statuses mixed, 2% past due with an open
invoice in dunning, 2% cancelled), three months of charges, a tenth of them with a perpetual
license and five activation events, a redemption for every other user, 5,000 fraud flags;
--rows usage rows and as many deductions spread over --days days, plus an allocation per
user; the daily summaries (and their system totals) and the money collected per day built
for every day before today, as the nightly jobs leave them.

Measured: GET /admin handled in process (Flask test client on the same PostgreSQL, so the
time is the app's: routing, the dashboard's queries, rendering), median and p95 over --repeat
loads after 3 warm-ups, for an admin (every card) with and without test data and for an
auditor (three cards, no revenue); then each card alone through the service, to show where
the time goes. Results in bench/results/dashboard.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, app_for, fresh_database, populate  # noqa: E402
from bench.ledger_scale import timed  # noqa: E402

TEST_USERS = "id % 100 = 7"  # 1% of the customers are test accounts


def fill(db, users: int, rows: int, days: int) -> None:
    from sqlalchemy import text

    from app.billing import tiers
    from app.licensing import service as licensing
    from app.licensing.seed import seed_versions
    from app.users.models import User

    sql = lambda statement, **params: db.session.execute(text(statement), params)  # noqa: E731
    sql(f"UPDATE users SET account_type = 'test', is_test = true WHERE {TEST_USERS}")
    sql("UPDATE users SET created_at = now() - make_interval(days => (id % 100)::int, secs => (id % 3600)::int)")
    for table in ("credit_balances", "api_keys"):
        sql(f"UPDATE {table} SET is_test = true WHERE user_id IN (SELECT id FROM users WHERE is_test)")
    # Back-dating the allocations populate() wrote is history-making, not app behaviour: the
    # ledger's append-only guard is off for this one statement.
    sql("ALTER TABLE credit_allocations DISABLE TRIGGER USER")
    sql("""UPDATE credit_allocations SET created_at = now() - make_interval(days => (user_id % :days)::int),
               is_test = user_id IN (SELECT id FROM users WHERE is_test)""", days=days)
    sql("ALTER TABLE credit_allocations ENABLE TRIGGER USER")
    tiers.ensure_default_tiers(db.session)
    sql("""INSERT INTO subscriptions (user_id, tier_id, status, billing_cycle, current_period_start, current_period_end,
               billing_anchor_day, cancel_at_period_end, is_test, created_at, updated_at)
           SELECT u.id, t.id, CASE WHEN u.id % 50 = 1 THEN 'past_due' WHEN u.id % 50 = 2 THEN 'cancelled' ELSE 'active' END,
                  CASE WHEN u.id % 10 = 3 THEN 'annual' ELSE 'monthly' END, date_trunc('month', now()),
                  date_trunc('month', now()) + interval '1 month' - interval '1 second', 1, false, u.is_test,
                  u.created_at, u.created_at
           FROM users u JOIN subscription_tiers t
             ON t.name = (ARRAY['free', 'free', 'pro', 'pro_max', 'enterprise_pro', 'perpetual'])[1 + (u.id % 6)::int]
           WHERE u.email LIKE 'bench%'""")
    sql("""INSERT INTO invoices (user_id, subscription_id, kind, period_key, status, currency, subtotal, total, amount_paid,
               attempt_count, hard_declined, is_test, created_at, updated_at)
           SELECT user_id, id, 'period', to_char(current_period_start, 'YYYY-MM-DD'),
                  CASE WHEN status = 'past_due' THEN 'open' ELSE 'paid' END, 'usd', 99.99, 99.99, 0,
                  CASE WHEN status = 'past_due' THEN 2 ELSE 1 END, false, is_test, now(), now()
           FROM subscriptions WHERE status <> 'cancelled'""")
    sql("""INSERT INTO payment_transactions (user_id, subscription_id, kind, amount, refunded_amount, currency, status,
               idempotency_key, is_test, created_at, updated_at)
           SELECT s.user_id, s.id, CASE WHEN s.id % 40 = 5 THEN 'refund' ELSE 'charge' END, 99.99, 0, 'usd',
                  CASE WHEN s.id % 20 = 0 THEN 'failed' ELSE 'succeeded' END, 'bench-' || s.id || '-' || m, s.is_test,
                  now() - make_interval(days => (m * 30 + s.id % 30)::int), now()
           FROM subscriptions s, generate_series(0, 2) m WHERE s.status <> 'cancelled'""")

    prices = list(db.session.execute(text(
        "SELECT p.model_name, p.id, v.vendor_name FROM model_prices p JOIN providers v ON v.id = p.provider_id")))
    cases = lambda i: " ".join(f"WHEN {n} THEN '{row[i]}'" for n, row in enumerate(prices))  # noqa: E731
    ids = " ".join(f"WHEN {n} THEN {row[1]}" for n, row in enumerate(prices))
    lo = db.session.scalar(text("SELECT min(id) FROM users WHERE email LIKE 'bench%'"))
    k = len(prices)
    sql(f"""INSERT INTO token_usage (user_id, request_id, model_price_id, model_name, vendor_name, tier, input_tokens,
               output_tokens, vendor_cost_usd, margin_percentage, customer_cost_usd, credits, is_test, created_at)
           SELECT :lo + (g % :n), 'dash-' || g, CASE g % {k} {ids} END, CASE g % {k} {cases(0)} END,
                  CASE g % {k} {cases(2)} END, 'pro', 100 + g % 900, 50 + g % 400, 0.0025 + (g % 7) * 0.000001, 40,
                  0.0035, 9 + g % 3, (:lo + (g % :n)) % 100 = 7, now() - (g * (make_interval(days => :days) / :rows))
           FROM generate_series(1, :rows) g""", lo=lo, n=users, rows=rows, days=days)
    sql("""INSERT INTO credit_deductions (user_id, amount, deduction_type, usage_id, related_usage_id, balance_after,
               is_test, created_at)
           SELECT user_id, credits, 'inference', id, request_id, 0, is_test, created_at FROM token_usage""")

    seed_versions(db.session)
    template = licensing.create_license(db.session, owner=db.session.get(User, lo), actor=None,
                                        purchase_price="299.99", purchased_version="1.0.0")
    sql("""INSERT INTO licenses (license_key, user_id, status, purchase_price, purchased_version, purchased_version_key,
               eligible_until_version, eligible_until_key, max_activations, purchased_at, is_test, created_at,
               updated_at)
           SELECT 'BENCH-' || u.id, u.id, 'active', l.purchase_price, l.purchased_version, l.purchased_version_key,
                  l.eligible_until_version, l.eligible_until_key, 3, u.created_at, u.is_test, u.created_at, now()
           FROM users u, licenses l WHERE l.id = :tmpl AND u.email LIKE 'bench%' AND u.id % 10 = 0""",
        tmpl=template.id)
    sql("""INSERT INTO license_activation_events (license_id, kind, source, created_at, is_test)
           SELECT l.id, (ARRAY['activated', 'deactivated', 'reactivated'])[1 + g % 3], 'client',
                  now() - make_interval(days => ((l.id + g * 7) % :days)::int), l.is_test
           FROM licenses l, generate_series(1, 5) g""", days=days)
    sql("""INSERT INTO coupons (code, description, coupon_type, discount_type, discount_value, uses_count, test_uses_count,
               max_uses_per_user, min_purchase_amount, tier_eligibility, billing_cycles, valid_from, valid_until,
               is_active, is_stackable, requires_licensed_device, created_at, updated_at)
           VALUES ('BENCH20', '', 'percentage_discount', 'percentage', 20, 0, 0, 100, 0, '[]', '[]',
                   now() - interval '200 days', now() + interval '200 days', true, false, false, now(), now())""")
    sql("""INSERT INTO coupon_redemptions (coupon_id, user_id, status, original_amount, discount_amount, final_amount,
               credits_granted, months_granted, budget_cost, credits_clawed_back, is_test, created_at)
           SELECT c.id, u.id, CASE WHEN u.id % 7 = 0 THEN 'failed' ELSE 'success' END, 99.99, 20.00, 79.99, 0, 0, 0, 0,
                  u.is_test, now() - make_interval(days => (u.id % :days)::int)
           FROM users u, coupons c WHERE c.code = 'BENCH20' AND u.email LIKE 'bench%' AND u.id % 2 = 0""", days=days)
    sql("""INSERT INTO coupon_fraud_detections (coupon_id, user_id, detection_type, severity, blocked, details,
               is_flagged, reviewed_at, is_test, created_at)
           SELECT c.id, u.id, 'velocity_abuse', 'high', false, '{}', true,
                  CASE WHEN u.id % 3 = 0 THEN now() END, u.is_test, now() - make_interval(days => (u.id % :days)::int)
           FROM users u, coupons c WHERE c.code = 'BENCH20' AND u.email LIKE 'bench%' AND u.id % 20 = 0""", days=days)
    db.session.commit()


def build_summaries(db, days: int) -> float:
    """The nightly jobs' work for every day before today: credits summaries, money collected."""
    from datetime import timedelta

    from app.billing import metrics
    from app.core import clock
    from app.credits import summaries

    start = time.perf_counter()
    today = clock.now().date()
    for back in range(days, 0, -1):
        summaries.build_day(db.session, today - timedelta(days=back))
        metrics.build_revenue_day(db.session, today - timedelta(days=back))
        db.session.commit()
    return round(time.perf_counter() - start, 1)


def staff_client(app, db, role: str):
    """A test client signed in (password and MFA done) as a new staff member with `role`."""
    import pyotp

    from app.auth.guards import SESSION_MFA, SESSION_SEEN, SESSION_STARTED
    from app.core import clock
    from app.rbac.models import Role, RoleAssignment
    from app.users.models import User

    with app.app_context():
        user = User(email=f"bench-{role}@rephlo.ai", is_staff=True, first_name="Bench", last_name=role,
                    totp_secret=pyotp.random_base32(), totp_enabled=True)
        db.session.add(user)
        db.session.flush()
        db.session.add(RoleAssignment(user_id=user.id, role_id=db.session.query(Role).filter_by(name=role).one().id,
                                      reason="bench"))
        db.session.commit()
        user_id = user.get_id()
    client = app.test_client()
    with client.session_transaction() as sess:
        now = clock.now().timestamp()
        sess["_user_id"], sess["_fresh"] = user_id, True
        sess[SESSION_STARTED] = sess[SESSION_SEEN] = now
        sess[SESSION_MFA] = True
    return client


def per_card(app, db, repeat: int, include_test: bool) -> dict:
    from app.analytics import service

    out = {}
    with app.app_context():
        for card in service.CARDS:
            allowed = {service.DASHBOARD_PERMISSION, card.permission}
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                board = service.dashboard(db.session, allowed.__contains__, include_test=include_test)
                times.append((time.perf_counter() - start) * 1000)
                db.session.rollback()
            out[card.name] = {"median_ms": round(statistics.median(times), 2), "shown": [c.name for c in board.cards]}
    return out


def slowest_queries(app, db, top: int = 8) -> dict:
    """The dashboard's statements (every card) by time, production and with test data."""
    from sqlalchemy import event

    from app.analytics import service
    from app.rbac.catalogue import ALL_PERMISSIONS

    out = {}
    with app.app_context():
        engine, seen = db.engine, []

        def before(conn, cursor, statement, params, context, executemany):
            context.bench_start = time.perf_counter()

        def after(conn, cursor, statement, params, context, executemany):
            seen.append((round((time.perf_counter() - context.bench_start) * 1000, 2), " ".join(statement.split())[:160]))

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        for include_test in (False, True):
            seen.clear()
            service.dashboard(db.session, set(ALL_PERMISSIONS).__contains__, include_test=include_test)
            db.session.rollback()
            out["with_test_data" if include_test else "production"] = {
                "statements": len(seen), "total_ms": round(sum(ms for ms, _ in seen), 2),
                "slowest": sorted(seen, reverse=True)[:top]}
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger("app.access").setLevel(logging.WARNING)  # one line per load otherwise
    url = fresh_database("rephlo_bench_dashboard")
    app = app_for(url)
    t0 = time.perf_counter()
    populate(app, args.users)
    from sqlalchemy import text

    from app.extensions import db
    from app.rbac.service import ensure_catalogue

    results = {"users": args.users, "usage_rows": args.rows, "deduction_rows": args.rows, "days": args.days}
    with app.app_context():
        ensure_catalogue(db.session)
        fill(db, args.users, args.rows, args.days)
        results["load_seconds"] = round(time.perf_counter() - t0, 1)
        results["summaries_seconds"] = build_summaries(db, args.days)
        db.session.commit()
        # As autovacuum leaves a live database: statistics fresh, visibility map set (index-only scans).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        results["counts"] = dict(db.session.execute(text("""
            SELECT 'users', count(*) FROM users UNION ALL SELECT 'subscriptions', count(*) FROM subscriptions
            UNION ALL SELECT 'payment_transactions', count(*) FROM payment_transactions
            UNION ALL SELECT 'ledger_rows', (SELECT count(*) FROM token_usage) + (SELECT count(*) FROM credit_deductions)
                                            + (SELECT count(*) FROM credit_allocations)
            UNION ALL SELECT 'credit_usage_daily', count(*) FROM credit_usage_daily
            UNION ALL SELECT 'license_activation_events', count(*) FROM license_activation_events
            UNION ALL SELECT 'coupon_redemptions', count(*) FROM coupon_redemptions""")).all())
    print(json.dumps(results), flush=True)

    clients = {"admin": staff_client(app, db, "admin"), "auditor": staff_client(app, db, "auditor")}
    for name, client, path in [("admin", clients["admin"], "/admin?include_test=0"),
                               ("admin_with_test_data", clients["admin"], "/admin?include_test=1"),
                               ("auditor", clients["auditor"], "/admin?include_test=0")]:
        timed(client, path, {}, 3)  # warm-up
        results[name] = timed(client, path, {}, args.repeat)
        print(name, json.dumps(results[name]), flush=True)
    body = clients["admin"].get("/admin?include_test=0").get_data(as_text=True)
    results["admin_figures"] = dict(
        (m.split('data-figure="')[1].split('"')[0], m.split(">")[-1]) for m in
        body.split("</a>") if 'class="figure-value" data-figure="' in m)
    results["slowest_queries"] = slowest_queries(app, db)
    results["load_average"] = os.getloadavg()
    results["per_card_production"] = per_card(app, db, 5, False)
    results["per_card_with_test_data"] = per_card(app, db, 5, True)
    print(json.dumps(results["per_card_production"]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
