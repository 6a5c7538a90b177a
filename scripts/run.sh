#!/usr/bin/env bash
# Start the app on its embedded default: SQLite under instance/, jobs inline, demo data
# seeded, and a local Stripe emulator (localstripe, dev-only) on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export FLASK_APP=wsgi
mkdir -p instance
PORT="${PORT:-5000}"
STRIPE_PORT="$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
$BIN/localstripe --port "$STRIPE_PORT" >instance/localstripe.log 2>&1 &
STRIPE_PID=$!
trap 'kill $STRIPE_PID 2>/dev/null || true' EXIT
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
echo "Rephlo Admin on http://127.0.0.1:$PORT/admin  (Stripe emulator on $STRIPE_API_BASE)"
$BIN/flask run --host 127.0.0.1 --port "$PORT"
