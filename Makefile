# Two entry points for people: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: run test lint typecheck pytest lint-deploy test-system-deps demo-catalog clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The service alone: what `make run` and the Docker image install (no torch).
$(VENV)/.service-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything the whole test suite needs, torch included.
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@ $(VENV)/.service-installed

run: $(VENV)/.service-installed
	@if [ -z "$$CRATEWATCH_API_KEY" ]; then echo "WARNING: CRATEWATCH_API_KEY is not set:" \
		"anyone who can reach port $(PORT) can add and delete albums."; fi
	$(BIN)/cratewatch serve --catalog catalog --data data --host $(HOST) --port $(PORT)

test: $(VENV)/.dev-installed test-system-deps lint typecheck lint-deploy pytest

# Debian's postgresql and chromium for the analytics and staff page tests: installed when root,
# else a loud SKIP line (and those tests skip).
test-system-deps:
	@bash .ci/test-system-deps.sh

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check service training tests benchmarks

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy service training

# Dockerfile, Compose, k8s/ and Prometheus checks; promtool comes from apt (see .ci/run).
lint-deploy: $(VENV)/.dev-installed
	VENV_BIN=$(BIN) bash deploy/check.sh

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q

demo-catalog: $(VENV)/.service-installed
	$(BIN)/cratewatch demo-catalog --out catalog

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
