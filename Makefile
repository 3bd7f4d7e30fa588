# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HOST   ?= 127.0.0.1
STAMP  := $(VENV)/.installed

.PHONY: install run test test-postgres lint typecheck format clean bench bench-quick

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
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
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Everything: ours and the peers on PostgreSQL, every scenario. BENCH_ARGS=--gate to gate.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# About a minute: ours only, PostgreSQL, one-second windows.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
