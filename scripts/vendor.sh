#!/usr/bin/env bash
# Copy front-end libraries from the npm lock file's install into git-ignored static/vendor/.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
rm -rf static/vendor
mkdir -p static/vendor/htmx static/vendor/pico static/vendor/chartjs
cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico/
cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chartjs/
