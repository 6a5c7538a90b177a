# Rephlo Admin: `make run` installs everything and starts the app on its embedded default;
# `make test` installs everything and runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: install vendor run test test-pg test-sqlite services browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	./scripts/vendor.sh

vendor:
	./scripts/vendor.sh

run: install
	./scripts/run.sh

# Debian's Chromium drives the browser tests (Playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

services:
	./scripts/services.sh

test: install browser services
	$(BIN)/pytest -q
	TEST_DB=sqlite $(BIN)/pytest -q -m "not e2e and not postgres and not redis" tests

clean:
	rm -rf $(VENV) node_modules static/vendor instance test-output
