# The two commands a newcomer runs are `make run` and `make test`; everything else here serves them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Re-install only when the project's dependency list changes, so repeated runs start at once.
STAMP  := $(VENV)/.installed

.PHONY: run test test-quick test-container lint typecheck pytest pgbouncer bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## run: apply the migrations (to an embedded PostgreSQL unless DATABASE_URL/DB_* say otherwise), then show the status
run: $(STAMP)
	$(BIN)/migrate apply
	$(BIN)/migrate status

## test: lint, type-check and run the whole suite on a real PostgreSQL
test: lint typecheck pytest

## test-quick: the suite without the tests marked slow, for the edit-run loop
test-quick: $(STAMP) pgbouncer
	$(BIN)/pytest -m "not slow"

## test-container: build the image, run the compose stack (PostgreSQL + 3 replicas) through an outage and a
## failed migration; installs and starts a Docker engine when none answers (docs/deployment.md)
test-container: $(STAMP)
	Backend/tests/container/run.sh

## lint: ruff, and the layering contracts in pyproject.toml (import-linter)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) pgbouncer
	$(BIN)/pytest

## pgbouncer: the OS package the pooler tests run for real (installed when missing; needs root or sudo)
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || { \
		echo "== installing PgBouncer (apt-get install pgbouncer) for the pooler tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -qq pgbouncer >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq pgbouncer >/dev/null; }; }

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## bench: the benchmarks side by side (runner: psql and dbmate; data layer: raw asyncpg, the spec's SQLAlchemy,
## Tortoise ORM, Piccolo), then the charts (docs/benchmarks.md); about 25 minutes on 2 cores
bench: $(BENCH_STAMP)
	$(BIN)/python bench/runner_bench.py
	$(BIN)/python bench/data_bench.py
	$(BIN)/python bench/chart.py

## bench-quick: the same at small sizes and few repeats (CI runs it; it checks no timing), about 2 minutes
bench-quick: $(BENCH_STAMP)
	$(BIN)/python bench/runner_bench.py --quick
	$(BIN)/python bench/data_bench.py --quick
	$(BIN)/python bench/chart.py --quick

clean:
	rm -rf $(VENV) .pgdata .pytest_cache .mypy_cache .ruff_cache
