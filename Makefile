# Two commands on a fresh machine: `make demo` and `make test`.
# Only python3 (3.11+) and make are assumed; uv is bootstrapped into .tools/
# and installs the locked dependencies (uv.lock) into .venv/.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: demo test faults lint typecheck bench clean pg-setup stilts-setup browser-setup

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	# Bytecode compiled once: imports (Great Expectations, Prefect) then read .pyc files even
	# where PYTHONDONTWRITEBYTECODE is set, as on these machines.
	$(UV) sync --frozen --quiet --compile-bytecode
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/firstlight demo

test: $(STAMP) pg-setup stilts-setup browser-setup
	$(VENV)/bin/ruff check src flows tasks tests bench
	$(VENV)/bin/ruff format --check src flows tasks tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -m "not faults"

# The fault-injection suite (tests/faults, docs/operations.md): every case, slow ones
# included; `make test` runs only its fast subset.
faults: $(STAMP) pg-setup
	$(VENV)/bin/pytest tests/faults

lint: $(STAMP)
	$(VENV)/bin/ruff check src flows tasks tests bench
	$(VENV)/bin/ruff format --check src flows tasks tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Every bench; `make bench BENCH="stack time_to_data"` measures only those named.
bench: $(STAMP) pg-setup
	$(VENV)/bin/python -m bench $(BENCH)

# PostgreSQL with q3c and pgsphere for the tests (idempotent; skips quietly with no server,
# fails with CI=true).
pg-setup:
	bash scripts/setup-postgres.sh

# STILTS for the taplint conformance tests (idempotent; skips quietly without apt, fails with
# CI=true).
stilts-setup:
	bash scripts/setup-stilts.sh

# Debian's chromium for the browser tests of the pages (idempotent; skips quietly without apt,
# fails with CI=true).
browser-setup:
	bash scripts/setup-chromium.sh

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
