"""A gunicorn worker killed with SIGKILL: how many new connections wait while its replacement
starts? With `reuse_port` each worker opens a listening socket of its own as soon as it is
forked, before it has loaded the app, and the kernel hands that socket its share of the new
connections, which wait till the app is loaded (or are reset, if they queued on the killed
worker's socket); on one shared socket only a worker that is ready accepts.

    .venv/bin/python bench/worker_kill.py [--reuse-port] [--rounds 3] [--connections 20]

gunicorn runs with the deployment's gunicorn.conf.py (2 gevent workers) on a fresh database,
without Redis; each connection sends one GET /api/v1/health, spread over `--spread` seconds
from the kill. tests/reliability/test_worker_restart.py runs the same procedure.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, ROOT, free_port  # noqa: E402

READY = "ready to serve"  # gunicorn.conf.py's post_worker_init logs it once a worker has loaded the app


def start(database_url: str, log_path: Path, reuse_port: bool, workers: int = 2) -> tuple[subprocess.Popen, str]:
    """gunicorn on `database_url` (no Redis), once every worker has loaded the app."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url.replace("+psycopg", ""), "FLASK_APP": "wsgi",
           "SECRET_KEY": "worker-kill", "REDIS_URL": "", "JOBS_INLINE": "1", "LOG_FORMAT": "json"}
    log = open(log_path, "w")
    cmd = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-w", str(workers), "-b",
           f"127.0.0.1:{port}", *(["--reuse-port"] if reuse_port else []), "wsgi:app"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_ready(proc, log_path, workers)
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen, log_path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while log_path.read_text().count(READY) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn's workers did not start: see {log_path}")
        time.sleep(0.05)


def workers_of(arbiter: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == arbiter:
                pids.append(int(entry))
    return pids


def kill_one_and_connect(proc: subprocess.Popen, base: str, connections: int, spread: float,
                         timeout: float = 15) -> list[float]:
    """SIGKILL one worker, then open `connections` new connections spread over `spread` seconds;
    each one's time to its answer (timeout: a failure, counted as `timeout`)."""
    victim = workers_of(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    times: list[float] = [timeout] * connections

    def one(i: int) -> None:
        time.sleep(max(0.0, started + i * spread / connections - time.monotonic()))
        t0 = time.monotonic()
        try:
            with urlopen(base + "/api/v1/health", timeout=timeout) as response:
                response.read()
            times[i] = time.monotonic() - t0
        except OSError:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def main() -> None:
    from bench.common import RESULTS, fresh_database

    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse-port", action="store_true", help="a listening socket per worker (SO_REUSEPORT)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--spread", type=float, default=2.0, help="seconds over which the connections are opened")
    args = parser.parse_args()
    url = fresh_database("rephlo_bench_worker_kill")
    RESULTS.mkdir(parents=True, exist_ok=True)
    rounds = []
    for _ in range(args.rounds):
        proc, base = start(url, RESULTS / "worker_kill.log", args.reuse_port)
        try:
            times = kill_one_and_connect(proc, base, args.connections, args.spread)
        finally:
            proc.terminate()
            proc.wait(20)
        rounds.append({"waited_over_1s": sum(t > 1 for t in times), "connections": len(times),
                       "max_s": round(max(times), 2), "load_avg_1m": round(os.getloadavg()[0], 2)})
        print(json.dumps({"reuse_port": args.reuse_port, **rounds[-1]}), flush=True)
    total = sum(r["waited_over_1s"] for r in rounds)
    print(f"reuse_port={args.reuse_port}: {total} of {args.connections * args.rounds} connections waited > 1 s")


if __name__ == "__main__":
    main()
