# stave — `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EOSJS := tests/vectors/eosjs
EOSJS_STAMP := $(EOSJS)/node_modules/.installed
CAR := tests/vectors/car
CAR_STAMP := $(CAR)/node_modules/.installed

.PHONY: setup servers run test drill lint format bench bench-full clean

setup: $(STAMP) $(EOSJS_STAMP) $(CAR_STAMP) servers

# The real backends the tests start (Redis, PostgreSQL, SeaweedFS S3, js-ipfs, anvil): idempotent,
# cached under ~/.cache/stave, so repeat runs take about a second.
servers: $(STAMP)
	STAVE_VENV=$(VENV) scripts/install-servers.sh

$(STAMP): pyproject.toml constraints.txt
	command -v cc >/dev/null || (apt-get update -qq && apt-get install -y -qq gcc)  # builds the C accelerators
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# eosjs and json-canonicalize: the reference implementations the tests compare against.
$(EOSJS_STAMP): $(EOSJS)/package.json $(EOSJS)/package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm ci --prefix $(EOSJS) --no-audit --no-fund --loglevel=error
	touch $@

# @ipld/car: the reference CAR implementation the archive is checked against.
$(CAR_STAMP): $(CAR)/package.json $(CAR)/package-lock.json
	npm ci --prefix $(CAR) --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)
	$(BIN)/stave serve

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

test: setup lint
	$(BIN)/python -m pytest -m "not drill"

# The long reliability drills (marker `drill`: tests/drills, and the fuzzers of tests/hostile, which
# run briefly in make test and STAVE_FUZZ_SECONDS each here); figures to bench/results/drills.json.
DRILL_PATHS := tests/drills tests/hostile
DRILL_STAMP := $(VENV)/.drill-installed
drill: setup $(DRILL_STAMP)
	STAVE_FUZZ=drill STAVE_DRILL_REPORT=1 $(BIN)/python -m pytest -m drill $(DRILL_PATHS)

# The drill extra (atheris): not in make setup, it has no wheel for every platform.
$(DRILL_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,drill]'
	touch $@

# make bench: every benchmark at its default size (at most 30 minutes on 2 cores); make bench-full:
# the full sizes (STAVE_BENCH_FULL=1: 10,000 events per peer run, the log scaled to 1M).
BENCH_STAMP := $(VENV)/.bench-installed
bench: $(STAMP) servers $(BENCH_STAMP)
	$(BIN)/python -m bench

bench-full: $(STAMP) servers $(BENCH_STAMP)
	STAVE_BENCH_FULL=1 $(BIN)/python -m bench

# The bench extra (nostr-relay, the peer measured beside stave; matplotlib): not needed by make test.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $@

clean:
	rm -rf $(VENV) $(EOSJS)/node_modules $(CAR)/node_modules .pytest_cache .mypy_cache .ruff_cache
