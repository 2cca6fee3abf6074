# One entry point for developers and CI (.ci/run calls `make test`).
#   make test        install, make sure PostgreSQL and Redis binaries exist, run pytest,
#                    then the ASL conformance cases
#   make check       lint + typecheck + test
#   make test-reliability  the reliability suite at full size (tests/reliability: faults on
#                    5,000-20,000-execution batches, the 100,000-execution load test); `make
#                    test` runs its short forms
#   make bench       the benchmark suite (bench-quick: a ~3 minute version)
#   make docs        regenerate docs/configuration.md, docs/cli.md and the bench tables

PYTHON ?= python
PYTEST_ARGS ?=
# The shared ASL conformance cases; `make test ASL_CASES=` skips them.
ASL_CASES ?= ../shared/asl-cases
ASL_ARGS ?=

# apt-get needs root; use sudo when we are not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

.PHONY: install services-deps test test-reliability lint typecheck check bench bench-quick docs

install:
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet -e '.[dev]'

services-deps:
	@if command -v redis-server >/dev/null 2>&1; then \
		echo "redis-server: $$(command -v redis-server)"; \
	else \
		echo "redis-server not found: installing it with apt-get"; \
		$(SUDO) apt-get update -q && $(APT_INSTALL) redis-server; \
	fi
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium: /usr/bin/chromium"; \
	else \
		echo "chromium not found: installing it with apt-get (the UI's browser tests)"; \
		$(SUDO) apt-get update -q && $(APT_INSTALL) chromium; \
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

# Full sizes; STATEFLEET_LOAD_EXECUTIONS sizes the load test (default 100000), figures are
# printed and appended to $(RELIABILITY_REPORT).
RELIABILITY_REPORT ?= reliability-figures.txt

test-reliability: install services-deps
	STATEFLEET_RELIABILITY=full STATEFLEET_RELIABILITY_REPORT=$(RELIABILITY_REPORT) \
		$(PYTHON) -m pytest tests/reliability -p no:cacheprovider --durations=0 $(PYTEST_ARGS)

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy statefleet

check: lint typecheck test

# Benchmarks (bench/run.py): PostgreSQL and Redis are started on loopback by the script;
# the Celery peer gets its own virtualenv (bench/.venv-celery), created on first use.
#   make bench        full suite (~25 min), medians of 3 -> bench/results/latest.md
#   make bench-quick  ~3 min, 1 run per figure       -> bench/results/quick.md
BENCH_ARGS ?=

bench: services-deps
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet -e .
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-quick: services-deps
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet -e .
	$(PYTHON) bench/run.py --quick $(BENCH_ARGS)

# The generated reference pages (tests/docs/test_reference.py fails when they are stale).
docs:
	$(PYTHON) docs/gen.py
