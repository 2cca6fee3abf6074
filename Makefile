# One entry point for developers and CI (.ci/run calls `make test`).
#   make test        install, make sure PostgreSQL and Redis binaries exist, run pytest,
#                    then the ASL conformance cases
#   make check       lint + typecheck + test

PYTHON ?= python
PYTEST_ARGS ?=
# The shared ASL conformance cases; `make test ASL_CASES=` skips them.
ASL_CASES ?= ../shared/asl-cases
ASL_ARGS ?=

# apt-get needs root; use sudo when we are not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

.PHONY: install services-deps test lint typecheck check bench

install:
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet -e '.[dev]'

services-deps:
	@if command -v redis-server >/dev/null 2>&1; then \
		echo "redis-server: $$(command -v redis-server)"; \
	else \
		echo "redis-server not found: installing it with apt-get"; \
		$(SUDO) apt-get update -q && $(APT_INSTALL) redis-server; \
	fi
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "postgresql: $$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"; \
	else \
		echo "PostgreSQL server binaries not found: installing postgresql with apt-get"; \
		$(SUDO) apt-get update -q && $(APT_INSTALL) postgresql; \
	fi

test: install services-deps
	@status=0; $(PYTHON) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; \
	elif [ $$status -ne 0 ]; then exit $$status; fi
	@if [ -z "$(ASL_CASES)" ]; then \
		echo "ASL conformance cases skipped (ASL_CASES is empty)"; \
	elif [ -f "$(ASL_CASES)/run.py" ]; then \
		echo "ASL conformance cases: $(ASL_CASES)"; \
		$(PYTHON) "$(ASL_CASES)/run.py" $(ASL_ARGS); \
	else \
		echo "ASL conformance cases skipped: no $(ASL_CASES)/run.py"; \
	fi

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy statefleet

check: lint typecheck test

bench:
	@if [ -f bench/interpreter.py ]; then \
		$(PYTHON) bench/interpreter.py; \
	else \
		echo "bench/interpreter.py does not exist yet"; exit 1; \
	fi
