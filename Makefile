# Two commands do the whole set-up: `make run` and `make test`.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ANVIL   := node_modules/.bin/anvil

.PHONY: install run test lint unit integration clean generate prometheus-tools

LOCK    := requirements.lock

# Every dependency from the hash-pinned lock (a tampered or substituted download fails the
# install), then the project itself with no dependency resolution of its own.
$(STAMP): pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Re-pin every dependency, with hashes, after changing pyproject.toml (needs pip-tools).
.PHONY: lock
lock:
	pip-compile --quiet --allow-unsafe --extra=bench --extra=dev --generate-hashes \
		--no-emit-index-url --no-emit-find-links --strip-extras \
		--output-file=$(LOCK) pyproject.toml

$(ANVIL): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Debian's prometheus and prometheus-alertmanager: promtool, amtool and the two servers the
# alerting tests start on loopback. Installed only when missing; the packages' own daemons are
# then stopped and disabled, so nothing is left listening on 9090/9093.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PROMETHEUS_BINARIES := promtool amtool prometheus prometheus-alertmanager

prometheus-tools:
	@for bin in $(PROMETHEUS_BINARIES); do command -v $$bin >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			prometheus prometheus-alertmanager >/dev/null; \
	fi
	@for svc in prometheus prometheus-alertmanager; do \
		if [ -d /run/systemd/system ] && systemctl is-enabled --quiet $$svc 2>/dev/null; then \
			$(SUDO) systemctl disable --now --quiet $$svc; \
		elif [ -x /etc/init.d/$$svc ] && /etc/init.d/$$svc status >/dev/null 2>&1; then \
			$(SUDO) /etc/init.d/$$svc stop >/dev/null; \
		fi; \
	done

install: $(STAMP) $(ANVIL) prometheus-tools

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

# Hosts as network namespaces (tests/cluster): workers, API, Temporal, PostgreSQL and the chain
# on separate addresses, hosts killed and cut off mid-backfill. Part of `make test` too; needs
# root and `ip` (skipped with the reason otherwise).
.PHONY: cluster
cluster: $(STAMP)
	$(VENV)/bin/pytest -m cluster tests/cluster

# Regenerate every committed generated file (indexer/generate.py lists them): the dashboards,
# rules, promtool tests, Alertmanager example, docs/metrics.md and indexer/api/openapi.json.
generate: $(STAMP)
	$(VENV)/bin/tindexer generate

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

# /metrics scrape time (p50/max) and series per family with 1, 10, 50, 100 chains, as
# `tindexer up` serves it; PostgreSQL from DATABASE_URL or 127.0.0.1:5432. Pass ARGS, e.g.
# ARGS="--variant before". Writes bench/results/metrics_scrape.json.
.PHONY: bench-metrics-scrape
bench-metrics-scrape: $(STAMP)
	$(PYTHON) bench/metrics_scrape.py $(ARGS)

# Indexing throughput with observability on vs off, in one run. Writes bench/results/overhead.json.
.PHONY: bench-overhead
bench-overhead: $(STAMP)
	$(PYTHON) bench/overhead.py

# Scheduling: per-block baseline vs ranges on the real dev server, plus the knob sweep.
# Tasks 1.3-1.4: a 50,000-workflow batch at the dev server's default and the recommended limits.
.PHONY: bench-temporal-limits
bench-temporal-limits: $(STAMP)
	$(PYTHON) bench/temporal_limits.py

# Many chains under one `tindexer up`: live lag, freshness, /metrics, starts per block, CPU.
# Writes bench/results/chains.json (not part of `make bench`: about 25 minutes).
.PHONY: bench-chains
bench-chains: $(STAMP)
	$(PYTHON) bench/chains.py --worker-processes 2

.PHONY: bench-schedule
bench-schedule: $(STAMP)
	$(PYTHON) bench/schedule.py

# End to end: 750,000 and 75,000 blocks, with the RPC and COPY ceilings and a plot.
.PHONY: bench-backlog
bench-backlog: $(STAMP)
	$(PYTHON) bench/backlog.py

# Mainnet-shaped blocks (sim chain `--profile mainnet`, every dataset): 20,000 blocks end to end
# beside the fetch (blocks + receipts) and COPY ceilings of the same rows, measured in the same
# run, with a plot. Writes bench/results/mainnet.json (+ .png) and REPORT.md.
.PHONY: bench-mainnet
bench-mainnet: $(STAMP)
	$(PYTHON) bench/mainnet.py
	$(PYTHON) bench/report.py

# COPY, reorg delete and a one-contract logs query: unpartitioned vs range-partitioned tables
# (PostgreSQL from DATABASE_URL, else postgresql://root@127.0.0.1:5432; fresh databases, dropped
# afterwards). Writes bench/results/partitioning.json.
.PHONY: bench-partitioning
bench-partitioning: $(STAMP)
	$(PYTHON) bench/partitioning.py

# anvil with contracts that log: raw fetch ceiling (blocks + receipts), the indexer with every
# dataset, ethereum-etl 2.4.2 (blocks+transactions, receipts+logs) and cryo, in the same rounds.
# Writes bench/results/anvil-datasets.json.
.PHONY: bench-anvil-datasets
bench-anvil-datasets: $(STAMP) $(ANVIL)
	$(PYTHON) bench/anvil_datasets.py

# The same 20,000-block mainnet-profile backlog on 1, 2 and 3 worker hosts (network namespaces,
# as `make cluster`): throughput, per-host CPU and peak RSS, Temporal and PostgreSQL CPU. Needs
# root. Writes bench/results/cluster.json.
.PHONY: bench-cluster
bench-cluster: $(STAMP)
	$(PYTHON) bench/cluster.py

# Every benchmark, then bench/results/REPORT.md.
.PHONY: bench
bench: bench-schedule bench-backlog bench-overhead bench-status bench-tuning bench-anvil \
	bench-mainnet bench-partitioning bench-anvil-datasets
	$(PYTHON) bench/simchain_throughput.py
	$(PYTHON) bench/report.py

# Worker concurrency and range size end to end; start connections and namespaceRPS for
# scheduling; interleaved rounds. Writes bench/results/tuning.json.
.PHONY: bench-tuning
bench-tuning: $(STAMP)
	$(PYTHON) bench/tuning.py

# A real node and a peer: anvil (3,000 blocks, ~5 tx each) through Temporal into PostgreSQL,
# beside anvil's raw fetch ceiling and ethereum-etl 2.4.2 (its own Python 3.9 venv, cached in
# ~/.cache/tindexer). Writes bench/results/anvil.json.
.PHONY: bench-anvil
bench-anvil: $(STAMP) $(ANVIL)
	$(PYTHON) bench/anvil.py

# The fault suite, recording each case's figures in bench/results/faults.json.
.PHONY: bench-faults
bench-faults: install
	TINDEXER_FAULTS_RESULTS=1 $(VENV)/bin/pytest tests/faults
