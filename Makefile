# Everything a newcomer needs: `make demo` runs pretix with the plugin, `make test` runs the tests.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PG_CONFIG := tests/postgres.cfg
DEV_CONFIG := data/pretix.cfg
DEMO_ENV := PRETIX_CONFIG_FILE=$(DEV_CONFIG) PYTHONPATH=demo DJANGO_SETTINGS_MODULE=demo_settings
LOCALE_DIR := pretix_secrets_import/locale
# Compiled translations: built from the .po files (not kept in git), as pretix-plugin-build does for a package.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(LOCALE_DIR)/*/LC_MESSAGES/django.po))

.PHONY: demo demo-schema install install-dev browser test test-pg screenshots lint migrations-check messages compilemessages clean \
	bench bench-pg load fuzz crash dist check-dist gate-loop pretix-suite pretix-suite-deps docs

# $(call pip_install,ARGS): `pip install ARGS` into $(VENV), by uv where it works: it installs pretix' ~150 packages
# several times faster than pip (bench/first_start.sh). The uv on PATH, else one that pip puts into $(VENV) (a few
# seconds); pip if that fails, or with UV=0. Only errors are shown: -qq hides pip's notes on each index it looks at,
# PYTHONWARNINGS the deprecation warnings of setuptools building the editable install. --compile-bytecode does what
# pip does by default: without it, and with PYTHONDONTWRITEBYTECODE set (as on these machines), every process
# compiled pretix and Django anew, 4-5 s of CPU per `python -m pretix` and per test worker.
UV ?= 1
define pip_install
	if [ "$(UV)" != 0 ] && { uv=$$(command -v uv) || { $(PIP) install -qq uv && uv=$(VENV)/bin/uv; }; } \
		&& $$uv pip install --quiet --compile-bytecode --python $(PY) $(1); then :; \
	else \
		[ "$(UV)" = 0 ] || echo "uv did not work: installing with pip"; \
		PYTHONWARNINGS=ignore $(PIP) install -qq $(1); \
	fi
endef

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "installing pretix and the plugin into $(VENV) …"
	@$(PYTHON) -m venv $(VENV)
	@$(call pip_install,--upgrade pip setuptools wheel)
	@$(call pip_install,-c constraints.txt -e .)
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	@echo "installing the development tools into $(VENV) …"
	@$(call pip_install,-c constraints.txt -e '.[dev]')
	@touch $@

install: $(VENV)/.installed $(MO_FILES)

install-dev: $(VENV)/.installed-dev $(MO_FILES)

$(DEV_CONFIG): demo/pretix.cfg.in Makefile
	@mkdir -p data
	@sed -e 's|@PORT@|$(PORT)|g' -e 's|@DATA@|$(CURDIR)/data|g' demo/pretix.cfg.in > $@

# demo/schema.sql: the demo database as the migrations of the pinned pretix leave it (see demo/schema.py). Renew it
# after changing constraints.txt or the plugin's migrations; tests/test_demo_schema.py says when it is out of date,
# make check-dist compares it with what the migrations make.
demo-schema: $(VENV)/.installed
	@rm -rf data/schema && mkdir -p data/schema
	@sed -e 's|@PORT@|$(PORT)|g' -e 's|@DATA@|$(CURDIR)/data/schema|g' demo/pretix.cfg.in > data/schema/pretix.cfg
	@PRETIX_CONFIG_FILE=data/schema/pretix.cfg PYTHONPATH=demo DJANGO_SETTINGS_MODULE=demo_settings \
		$(PY) -m pretix migrate --noinput -v 0
	@$(PY) demo/schema.py dump data/schema/db.sqlite3
	@rm -rf data/schema
	@echo "demo/schema.sql written"

# One short line per stage; migrating, the demo data and the server in one process (demo/setup_demo.py).
demo: $(VENV)/.installed $(MO_FILES)
	@rm -f $(DEV_CONFIG)
	@$(MAKE) --no-print-directory $(DEV_CONFIG)
	@echo "migrating the database in data/ …"
	@$(PY) demo/schema.py restore data/db.sqlite3
	@$(DEMO_ENV) PORT=$(PORT) $(PY) demo/setup_demo.py --serve 127.0.0.1:$(PORT)

# Debian's headless Chromium for tests/test_browser.py, installed with apt (as root, as CI runs) only if missing.
# SKIP_BROWSER_TESTS=1 skips the installation and the test.
APT_BROWSER := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver
browser:
	@if [ -n "$$SKIP_BROWSER_TESTS" ] && [ "$$SKIP_BROWSER_TESTS" != 0 ]; then \
		echo "SKIP_BROWSER_TESTS is set: not installing chromium"; \
	elif [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		$(APT_BROWSER) || { apt-get update && $(APT_BROWSER); } \
		|| { echo "Installing chromium failed; run 'make browser' as root, or set SKIP_BROWSER_TESTS=1"; exit 1; }; \
	fi

# The tests run on TEST_WORKERS pytest-xdist workers, each with a database of its own whose schema is built once per
# run (tests/database.py). The heavy suites (marker `heavy`: properties, fuzzing, crash safety, the Celery worker, the
# browser, the gate loop) run once per .ci/run: make test-pg runs them, make test all but those (HEAVY=1: all). The
# suites whose answers do not depend on the database (marker `db_independent`: the permission matrix) run once too,
# in make test; make test-pg leaves them out (PG_SELECT= runs every test there).
# A file's tests stay on one worker: some find their PostgreSQL sessions by name; the files go out in the order of
# tests/conftest.py, heavy first (xdist would otherwise start with the files of the most tests and leave the heavy
# ones for the end). On PostgreSQL more workers than cores: the crash and worker tests spend much of their time
# waiting for processes.
TEST_WORKERS ?= 2
PG_TEST_WORKERS ?= 5
PG_SELECT ?= -m "not db_independent"
HEAVY ?= 0
test: $(VENV)/.installed-dev browser $(MO_FILES)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(if $(filter 1,$(HEAVY)),,-m "not heavy") $(PYTEST_ARGS)

test-pg: $(VENV)/.installed-dev browser $(MO_FILES)
	PRETIX_CONFIG_FILE=$(PG_CONFIG) $(PY) -m pytest -n $(PG_TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		$(PG_SELECT) $(PYTEST_ARGS)

# pretix' own tests (the sdist of the pinned release, fetched into data/) with the plugin enabled for every event:
# check-in and orders by default, PRETIX_SUITE_ARGS="tests/base/test_quotas.py -n 2" for others.
PRETIX_SUITE_ARGS ?= tests/base/test_checkin.py tests/api/test_checkin.py tests/api/test_checkinrpc.py \
	tests/base/test_orders.py -n 2
SUITE_EXTRAS := .[dev,pretix-suite]
pretix-suite: pretix-suite-deps $(MO_FILES)
	.ci/pretix-suite $(PRETIX_SUITE_ARGS)

# What pretix' tests need besides ours; .ci/run installs it first, so that no install changes the virtualenv while
# tests run from it.
pretix-suite-deps: $(VENV)/.installed-dev
	@$(call pip_install,-c constraints.txt -e '$(SUITE_EXTRAS)')

# The manual (docs/, reStructuredText as pretix' own documentation) as HTML in docs/_build/html, with Sphinx from the
# `docs` extra; warnings are errors, so a broken reference or directive fails the build.
DOCS_EXTRAS := .[dev,docs]
docs: $(VENV)/.installed-dev
	@$(call pip_install,-c constraints.txt -e '$(DOCS_EXTRAS)')
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

# The whole gate loop on PostgreSQL (tests/gate/test_loop.py): sell, pay, cancel, regenerate and expire tickets, then
# a table of pretix' order data beside the feed, the webhook deliveries to a local receiver and the gate lists.
gate-loop: $(VENV)/.installed-dev $(MO_FILES)
	PRETIX_CONFIG_FILE=$(PG_CONFIG) $(PY) -m pytest -s -q tests/gate/test_loop.py

# Screenshots of the backend pages and of two ticket PDFs for README.md and the manual (docs/).
screenshots: $(VENV)/.installed-dev browser $(MO_FILES)
	SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest -q tests/test_browser.py tests/tickets/test_barcodes.py::test_the_demo_series_prints_code_128

# flake8 and isort, then .ci/structure: no import cycle in the package, no module over 400 lines (models.py under
# 300), no function over 60, README.md at most 250 lines. ruff has no rule for lines per function or module, nor for
# import cycles.
lint: $(VENV)/.installed-dev
	$(PY) -m flake8 pretix_secrets_import tests demo bench
	$(PY) -m isort --check-only --diff pretix_secrets_import tests demo bench
	$(PY) .ci/structure

migrations-check: $(VENV)/.installed-dev
	@rm -f $(DEV_CONFIG)
	@$(MAKE) --no-print-directory $(DEV_CONFIG)
	PRETIX_CONFIG_FILE=$(DEV_CONFIG) $(PY) -m pretix makemigrations --check --dry-run pretix_secrets_import

# Benchmarks (BENCHMARKS.md): a throwaway pretix on SQLite (a temporary directory) or PostgreSQL (a database of the
# run's own, created and dropped). BENCH_SIZE=smoke for a quick run; BENCH_ARGS=--strict fails on a miss.
BENCH_SIZE ?= full
bench: $(VENV)/.installed $(MO_FILES)
	BENCH_SIZE=$(BENCH_SIZE) $(PY) bench/run.py --db sqlite $(BENCH_ARGS)

bench-pg: $(VENV)/.installed $(MO_FILES)
	BENCH_SIZE=$(BENCH_SIZE) $(PY) bench/run.py --db postgresql $(BENCH_ARGS)

# Hardening runs at full size (make test / test-pg run them small: 40 examples per endpoint, one kill per scenario,
# imports of 50,000 lines). fuzz: 2,000 generated cases per endpoint and importer test on SQLite (~15 min here);
# crash: 20 SIGKILL rounds per scenario on PostgreSQL, imports of 200,000 lines (~8-11 min here).
FUZZ_EXAMPLES ?= 2000
CRASH_ROUNDS ?= 20
CRASH_IMPORT_LINES ?= 200000
fuzz: $(VENV)/.installed-dev $(MO_FILES)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/test_fuzz.py $(PYTEST_ARGS)

crash: $(VENV)/.installed-dev $(MO_FILES)
	CRASH_ROUNDS=$(CRASH_ROUNDS) CRASH_IMPORT_LINES=$(CRASH_IMPORT_LINES) PRETIX_CONFIG_FILE=$(PG_CONFIG) $(PY) -m pytest -s tests/test_crash_safety.py $(PYTEST_ARGS)

# Load run (BENCHMARKS.md): gunicorn and a Celery worker with pretix on 127.0.0.1, on a PostgreSQL database and a
# redis-server that the run creates and starts for itself and removes at the end, whatever happens (bench/stack.py):
# nothing of a pretix beside it is touched. LOAD_SECONDS (60, longer for the kill) of concurrent list, create,
# bulk_create and order requests and backend imports, one of them killed with its worker and one cut off by terminated
# database sessions; then orders/s with random against imported_secrets, then the invariants (~6 min here).
load: $(VENV)/.installed-dev $(MO_FILES)
	$(PY) bench/load.py

# Translations: `make messages` updates every .po file from the sources (new strings come in untranslated, strings
# no longer used go) and compiles them. A new language: mkdir -p $(LOCALE_DIR)/<code>/LC_MESSAGES, then make messages.
messages: $(VENV)/.installed
	cd pretix_secrets_import && env -u DJANGO_SETTINGS_MODULE ../$(VENV)/bin/django-admin makemessages \
		$(patsubst $(LOCALE_DIR)/%/LC_MESSAGES,-l %,$(wildcard $(LOCALE_DIR)/*/LC_MESSAGES)) \
		--no-obsolete --add-location file
	@$(MAKE) --no-print-directory compilemessages

compilemessages: $(MO_FILES)

# GNU gettext's msgfmt if installed (it also checks the placeholders), else Babel, which pretix depends on.
%.mo: %.po
	@if command -v msgfmt >/dev/null; then msgfmt --check -o $@ $<; \
	else $(VENV)/bin/pybabel compile --statistics -i $< -o $@; fi

# Release artifacts (docs/development/releasing.rst), built from a clean copy of the files git would take, each in an
# isolated build environment whose build step compiles the translations. dist: the sdist and the wheel into dist/.
# check-dist: the same, then twine check, check-manifest, the contents of both, and the wheel installed into a fresh
# virtualenv (by uv where it is, else pip) with the pretix of constraints.txt: migrations applied and equal to
# demo/schema.sql, German texts shown (.ci/check-dist; ~2 min).
dist: $(VENV)/.installed-dev
	$(PY) .ci/check-dist --build-only

check-dist: $(VENV)/.installed-dev
	$(PY) .ci/check-dist

clean:
	rm -rf $(VENV) data build *.egg-info $(MO_FILES)
