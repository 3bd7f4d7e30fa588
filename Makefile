# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HOST   ?= 127.0.0.1
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-run run test test-postgres lint typecheck format clean smoke-install bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What serving needs, and nothing else (no test tools).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# Serving plus the test toolchain (the `test` extra).
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

install-run: $(RUN_STAMP)

install: $(TEST_STAMP)

run: install-run
	$(BIN)/lwa-accounts serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

# The same suite with PostgreSQL (127.0.0.1:5432) as every test's default database.
test-postgres: install
	LWA_TEST_DATABASE=postgres $(BIN)/pytest $(PYTEST_ARGS)

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# The benchmark suite (docs/benchmarks.md): its own extra packages, the peers' virtualenvs
# under var/bench/venvs (made once, from the package index), results in benchmarks/results/.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Everything: ours and the peers on PostgreSQL, every scenario. BENCH_ARGS=--gate to gate.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# About a minute: ours only, PostgreSQL, one-second windows.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick $(BENCH_ARGS)

# What the container image does, on this machine: build the wheel, install it alone into a
# fresh venv, migrate, serve with 2 workers, sign in, stop (tests/smoke_install.py).
smoke-install: install
	$(BIN)/python -m tests.smoke_install

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
