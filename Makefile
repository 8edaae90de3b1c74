# Two entry points for people: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000
# Debian package groups the tests use (deploy/install-system-deps.sh): installed when missing,
# else a loud SKIP line and the tests that need them skip with the reason. prometheus gives
# `promtool` and `prometheus`; postgresql gives `initdb` and `postgres` (the tests start their
# own server in a temp dir); chromium gives `/usr/bin/chromium` for Playwright.
SYSTEM_DEPS ?= prometheus postgresql chromium
STAGE := bash deploy/stage.sh
SUBMAKE := $(MAKE) --no-print-directory
# glibc gives each thread that allocates its own arena, and large uploads decoded in several
# threads left RSS high for good; 2 arenas bound it (benchmarks/reports/memory.md: peak 368 ->
# 314 MB over 1,000 15-MP photos). Read at process start, so set here and in the Dockerfile.
RUN_ENV := MALLOC_ARENA_MAX=2
# Room the dev install needs (measured: the venv is 6.7 GB, pip unpacks wheels beside it).
DEV_DISK_GB ?= 9

.PHONY: run test lint typecheck pytest lint-deploy demo-catalog clean system-deps install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The service alone: what `make run` and the Docker image install (no torch).
$(VENV)/.service-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything the whole test suite needs, torch included.
# The disk check runs only when something is to be installed (a warm venv needs no room).
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	bash deploy/check-disk.sh $(VENV) $(DEV_DISK_GB)
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@ $(VENV)/.service-installed

run: $(VENV)/.service-installed
	@if [ -z "$$CRATEWATCH_API_KEY" ]; then echo "WARNING: CRATEWATCH_API_KEY is not set:" \
		"anyone who can reach port $(PORT) can add and delete albums."; fi
	$(RUN_ENV) $(BIN)/cratewatch serve --catalog catalog --data data --host $(HOST) --port $(PORT)

# Each stage prints its wall time; a summary of all of them comes last, failed or not.
test:
	@log=$$(mktemp); export STAGE_LOG=$$log; \
	$(STAGE) "system deps" $(SUBMAKE) system-deps && \
	$(STAGE) install $(SUBMAKE) install-dev && \
	$(STAGE) lint $(SUBMAKE) lint && \
	$(STAGE) typecheck $(SUBMAKE) typecheck && \
	$(STAGE) "deploy checks" $(SUBMAKE) lint-deploy && \
	$(STAGE) pytest $(SUBMAKE) pytest; \
	status=$$?; $(STAGE) --summary; rm -f $$log; exit $$status

system-deps:
	bash deploy/install-system-deps.sh $(SYSTEM_DEPS)

install-dev: $(VENV)/.dev-installed

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check service training tests benchmarks

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy service training

# Dockerfile, Compose, k8s/ and Prometheus checks; promtool comes from `make system-deps`.
lint-deploy: $(VENV)/.dev-installed
	VENV_BIN=$(BIN) bash deploy/check.sh

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q

demo-catalog: $(VENV)/.service-installed
	$(BIN)/cratewatch demo-catalog --out catalog

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .system-deps
