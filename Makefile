# ppml: `make demo` runs the customer -> server -> customer flow, `make test` runs every check.
# Both set up .venv first if it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck unit jstest setup bench load clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ppml needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' || \
		{ bash scripts/install-system-deps.sh && $(BIN)/python -m pip install --quiet -e '.[dev]'; }
	@# The browser tests drive Debian's Chromium (never Playwright's own download).
	@[ -x /usr/bin/chromium ] || bash scripts/install-system-deps.sh
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# Throughput, latency, bytes and peak memory against python-paillier, in one run.
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench.py

# A bounded load test of a real `ppml serve` on 127.0.0.1 (32 clients, 320 requests).
load: $(STAMP)
	$(BIN)/python benchmarks/load.py

demo: $(STAMP)
	$(BIN)/ppml demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

# Hypothesis runs derandomised there (the "ci" profile in tests/conftest.py): no test depends on luck.
unit: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest

# The browser client's JavaScript, on the same known-answer vectors as the Python tests.
jstest: $(STAMP)
	@command -v node >/dev/null 2>&1 || bash scripts/install-system-deps.sh
	node --test tests/js/*.test.mjs

test: lint typecheck unit jstest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
