# Everything a newcomer needs: `make demo` runs pretix with the plugin, `make test` runs the tests.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PG_CONFIG := tests/postgres.cfg
DEV_CONFIG := data/pretix.cfg
DEMO_ENV := PRETIX_CONFIG_FILE=$(DEV_CONFIG) PYTHONPATH=demo DJANGO_SETTINGS_MODULE=demo_settings

.PHONY: demo install install-dev test test-pg lint migrations-check clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(DEV_CONFIG): demo/pretix.cfg.in Makefile
	mkdir -p data
	sed -e 's|@PORT@|$(PORT)|g' -e 's|@DATA@|$(CURDIR)/data|g' demo/pretix.cfg.in > $@

demo: $(VENV)/.installed
	@rm -f $(DEV_CONFIG)
	@$(MAKE) --no-print-directory $(DEV_CONFIG)
	$(DEMO_ENV) $(PY) -m pretix migrate --noinput -v 0
	$(DEMO_ENV) PORT=$(PORT) $(PY) demo/setup_demo.py
	$(DEMO_ENV) $(PY) -m pretix runserver --noreload 127.0.0.1:$(PORT)

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-pg: $(VENV)/.installed-dev
	PRETIX_CONFIG_FILE=$(PG_CONFIG) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(PY) -m flake8 pretix_secrets_import tests demo
	$(PY) -m isort --check-only --diff pretix_secrets_import tests demo

migrations-check: $(VENV)/.installed-dev
	@rm -f $(DEV_CONFIG)
	@$(MAKE) --no-print-directory $(DEV_CONFIG)
	PRETIX_CONFIG_FILE=$(DEV_CONFIG) $(PY) -m pretix makemigrations --check --dry-run pretix_secrets_import

clean:
	rm -rf $(VENV) data build *.egg-info
