# Two commands do the whole set-up: `make run` and `make test`.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ANVIL   := node_modules/.bin/anvil

.PHONY: install run test lint unit integration clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

$(ANVIL): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(ANVIL)

run: $(STAMP)
	$(VENV)/bin/tindexer up

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install lint
	$(VENV)/bin/pytest

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

clean:
	rm -rf $(VENV) node_modules .tindexer

# Our PostgreSQL health endpoint vs Debian's prometheus-postgres-exporter under pgbench load
# (needs `apt-get install -y prometheus-postgres-exporter` and a PostgreSQL on 127.0.0.1:5432).
.PHONY: bench-pg-health
bench-pg-health: $(STAMP)
	$(PYTHON) bench/pg_exporter_compare.py

# GET /chains/status p95 for a chain with 10M indexed blocks and 1,000 gaps (limit 20 ms);
# PostgreSQL from DATABASE_URL or embedded. Writes bench/results/status.json.
.PHONY: bench-status
bench-status: $(STAMP)
	$(PYTHON) bench/status.py
