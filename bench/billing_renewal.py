"""Renewal throughput, by hand: N Pro subscriptions with a card on file come due, the renewal
job invoices and charges them all against localstripe (started here, on a free loopback port),
and the allocation of each period goes through the credits service.

    .venv/bin/python bench/billing_renewal.py --subs 200              # SQLite file in a temp dir
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rephlo_bench .venv/bin/python bench/billing_renewal.py

Prints subscriptions per second for opening periods and for charging; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.request import urlopen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subs", type=int, default=100)
    args = parser.parse_args()
    port = _free_port()
    emulator = subprocess.Popen([str(Path(sys.executable).with_name("localstripe")), "--port", str(port),
                                 "--from-scratch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urlopen(base + "/js.stripe.com/v3/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    os.environ.update(STRIPE_API_BASE=base, STRIPE_API_KEY="sk_test_bench", JOBS_INLINE="1", REDIS_URL="")
    try:
        run(args.subs)
    finally:
        emulator.terminate()
        emulator.wait(10)


def run(count: int) -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.billing import changes, periods, renewal, tiers
    from app.billing.subscriptions import new_subscription
    from app.core import clock
    from app.extensions import db
    from app.users.models import User

    app = create_app({"STRIPE_MAX_RETRIES": 0})
    with app.app_context(), app.test_request_context():
        upgrade()
        all_tiers = tiers.ensure_default_tiers(db.session)
        clock.freeze(datetime(2025, 10, 1, tzinfo=timezone.utc))
        started = time.perf_counter()
        for n in range(count):
            user = User(email=f"bench-{n}-{time.time_ns()}@example.com", first_name="Bench", last_name=str(n))
            db.session.add(user)
            db.session.flush()
            sub = new_subscription(db.session, user, all_tiers["pro"], start=periods.start_of_day(clock.now().date()))
            db.session.commit()
            changes.attach_card(db.session, None, sub, "pm_card_visa", reason="bench", retry=False)
        setup = time.perf_counter() - started
        clock.freeze(datetime(2025, 11, 1, 3, tzinfo=timezone.utc))
        started = time.perf_counter()
        counts = renewal.run(db.session)
        elapsed = time.perf_counter() - started
        print(f"{count} subscriptions with a card on file set up in {setup:.1f}s")
        print(f"renewal: {counts} in {elapsed:.1f}s = {count / elapsed:.1f} subscriptions/s "
              f"(open period + invoice + PaymentIntent create/confirm + allocation)")
        started = time.perf_counter()
        again = renewal.run(db.session)
        print(f"second run (idempotent): {again} in {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
