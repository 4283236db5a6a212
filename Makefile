# loanfund — set-up and checks. `make run` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
KEYS_FILE ?= .demo-keys.json
LOANFUND_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
export LOANFUND_TEST_POSTGRES_URL

.PHONY: install assets browser i18n screenshots run migrate demo test lint typecheck migrations-check test-sqlite test-postgres fmt bench fuzz load clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# Browser assets (htmx, ECharts) from the npm registry, pinned by package-lock.json, copied into the app's
# static folder with their licences; not committed (src/loanfund/web/static/vendor is ignored).
VENDOR := src/loanfund/web/static/vendor/manifest.json
$(VENDOR): package.json package-lock.json tools/vendor-assets.mjs
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	node tools/vendor-assets.mjs

assets: $(VENDOR)

install: $(BIN)/.installed $(VENDOR)

# Debian's Chromium and CJK fonts for the browser tests (Playwright drives /usr/bin/chromium). Without a
# browser the browser tests fail; they never skip.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "chromium missing: run as root: apt-get install -y chromium chromium-driver fonts-noto-cjk" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; \
	fi
	@test -x /usr/bin/chromium && echo "browser: $$(/usr/bin/chromium --version 2>/dev/null)"

# The portal's pages at phone width and the console's dashboard, risk page, a report and a claim on the
# demo data at desktop width, as pictures for the README (docs/screenshots/portal-*.png, console-*.png).
screenshots: install browser
	LOANFUND_SCREENSHOTS=docs/screenshots $(BIN)/pytest --db sqlite -p no:cacheprovider -q tests/web/test_portal_browser.py -k phone
	LOANFUND_SCREENSHOTS=docs/screenshots $(BIN)/python -m tests.web.console_screenshots

# The pages' catalogues: extract each part's messages, then update its zh_CN catalogue (a translator
# edits src/loanfund/web/locale/zh_CN/LC_MESSAGES/<part>.po; tests/web checks nothing is left out).
LOCALE := src/loanfund/web/locale
EXTRACT := $(BIN)/pybabel -q extract -F babel.cfg -k N_ --no-location --sort-output --project loanfund
i18n: install
	$(EXTRACT) -o $(LOCALE)/kit.pot src/loanfund/web/*.py src/loanfund/web/templates
	$(EXTRACT) -o $(LOCALE)/portal.pot src/loanfund/web/portal src/loanfund/applications/reasons.py
	$(EXTRACT) -o $(LOCALE)/console.pot src/loanfund/web/console
	@for d in kit portal console; do \
		if [ -f $(LOCALE)/zh_CN/LC_MESSAGES/$$d.po ]; then \
			$(BIN)/pybabel -q update --no-fuzzy-matching --ignore-obsolete -D $$d -i $(LOCALE)/$$d.pot -d $(LOCALE) -l zh_CN; \
		else $(BIN)/pybabel -q init -D $$d -i $(LOCALE)/$$d.pot -d $(LOCALE) -l zh_CN; fi; \
	done

migrate: install
	$(BIN)/loanfund db upgrade

demo: migrate
	$(BIN)/loanfund demo --if-empty --keys-file $(KEYS_FILE)

# The server, and beside it the webhook worker (`loanfund worker`), stopped with the server.
run: demo
	@echo "Enterprise portal: http://$(HOST):$(PORT)/"
	@$(BIN)/loanfund howto --keys-file $(KEYS_FILE) --base-url http://$(HOST):$(PORT)
	@$(BIN)/loanfund worker & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
	$(BIN)/loanfund serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: install
	$(BIN)/mypy

migrations-check: install
	@tmp=$$(mktemp -d); \
	LOANFUND_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic upgrade head >/dev/null 2>&1 && \
	LOANFUND_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic check; rc=$$?; rm -rf $$tmp; exit $$rc

test-sqlite: install
	$(BIN)/pytest --db sqlite -p no:cacheprovider

test-postgres: install
	$(BIN)/pytest --db postgres -p no:cacheprovider

# Lint, types, migration drift, then the whole suite on SQLite and on PostgreSQL, side by side
# (tools/test-backends.sh; TEST_SERIAL=1 runs them one after the other).
test: lint typecheck migrations-check browser
	PYTEST=$(BIN)/pytest tools/test-backends.sh

# Benchmarks against raw baselines on the PostgreSQL server of LOANFUND_TEST_POSTGRES_URL (each creates and
# drops its own loanfund_bench_* databases). Quick profile: under 6 minutes. BENCH_PROFILE=full make bench:
# the 1,000,000-loan figures (about half an hour). They print ratios against their bars; never a test.
# bench.stress: the stress test, 100,000 covered loans × 10,000 scenarios on one core (either profile).
bench: install
	@set -e; for b in ingest single reports webhooks stress; do $(BIN)/python -m bench.$$b; done

# A long schema-fuzzing run: FUZZ_EXAMPLES examples per operation, caller and mode, fresh randomness each
# run (LOANFUND_FUZZ_SEED=<n> repeats one). `make test` runs the same test bounded to 5, derandomized.
FUZZ_EXAMPLES ?= 200
FUZZ_DB ?= postgres
fuzz: install
	LOANFUND_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LOANFUND_FUZZ_RANDOM=1 \
		$(BIN)/pytest --db $(FUZZ_DB) -p no:cacheprovider -q tests/security/test_fuzz.py

fmt: install
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

# 50 bank clients for 60 s against two server processes on PostgreSQL; prints req/s and p50/p99.
load: install
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis loanfund.db loanfund.db-* $(KEYS_FILE)
