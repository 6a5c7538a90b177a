#!/usr/bin/env bash
# Start the app on its embedded default: SQLite (WAL) under instance/, background jobs on a
# worker thread and the periodic jobs on the app's own scheduler (no Redis needed), demo data
# seeded on today's calendar, and a local Stripe emulator (localstripe, dev-only) on a free
# loopback port. Ends by printing the URL, the admin sign-in (with a current TOTP code) and the
# sandbox API key.
#   PORT          the app's port (5000)
#   INSTANCE_DIR  where the SQLite file, the secret key and the logs live (instance/)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export FLASK_APP=wsgi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's app, wherever the venv points
export INSTANCE_DIR="${INSTANCE_DIR:-$PWD/instance}"
mkdir -p "$INSTANCE_DIR"
PORT="${PORT:-5000}"
STRIPE_PORT="$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
$BIN/localstripe --port "$STRIPE_PORT" >"$INSTANCE_DIR/localstripe.log" 2>&1 &
STRIPE_PID=$!
APP_PID=""
trap 'kill $APP_PID $STRIPE_PID 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:$STRIPE_PORT}"
# localstripe sends signed webhooks once told where: register /webhooks/stripe with a local secret.
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_local_$($BIN/python -c 'import secrets; print(secrets.token_hex(16))')}"
$BIN/python - <<PY || echo "warning: could not register the webhook with the Stripe emulator"
import time, urllib.parse, urllib.request
data = urllib.parse.urlencode({"url": "http://127.0.0.1:$PORT/webhooks/stripe", "secret": "$STRIPE_WEBHOOK_SECRET"}).encode()
for _ in range(50):
    try:
        urllib.request.urlopen("$STRIPE_API_BASE/_config/webhooks/rephlo", data=data, timeout=1)
        break
    except OSError:
        time.sleep(0.2)
PY
# Plain HTTP on this machine, said explicitly: elsewhere the staff cookie is Secure (HTTPS only).
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-0}"
$BIN/flask db upgrade
$BIN/flask seed
$BIN/flask run --host 127.0.0.1 --port "$PORT" --with-threads --no-reload &
APP_PID=$!
# The first request also starts the embedded scheduler (app/ops/scheduler.py).
$BIN/python - <<PY
import time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:$PORT/api/v1/health", timeout=2)
        break
    except OSError:
        time.sleep(0.1)
PY
$BIN/flask welcome --url "http://127.0.0.1:$PORT"
wait "$APP_PID"
