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
