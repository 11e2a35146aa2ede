# Set-up and everyday commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: help install run test test-fast lint format bench bench-ingest bench-query bench-concurrency lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# The CPU wheel first: anything that asks for torch later is then satisfied without CUDA.
	$(BIN)/pip install torch==2.13.0
	# llama-cpp-python compiles from source here (a few minutes once, then pip's cache).
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(BIN)/.installed  ## create .venv with everything (torch CPU, llama.cpp, models)

run: install  ## serve on the embedded defaults, ingesting the examples if the store is empty
	$(BIN)/rag-ingest examples/docs --if-empty
	@# The first run creates an admin key and prints it once; later runs keep the existing keys.
	$(BIN)/rag-server keys add --id local-admin --role admin --groups '*' --if-none
	$(BIN)/rag-server

test: install  ## the whole suite, slow model and process tests included
	bash .ci/ensure-kubectl  # the manifest tests render k8s/ with kubectl kustomize
	$(BIN)/python -m pytest

test-fast: install  ## everything but the tests marked slow
	$(BIN)/python -m pytest -m "not slow"

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: bench-ingest bench-query bench-concurrency  ## every benchmark below (about 45 min idle)

bench-ingest: install  ## ingestion and embedder backends: speed and hit@5 (about 19 min idle)
	$(BIN)/pip install -q -e '.[dev,openvino]'  # the openvino runtime only: torch stays 2.13.0
	$(BIN)/python bench/ingest_bench.py

lock: install  ## pin the image's run-time packages to this venv's versions (docker/constraints.txt)
	$(BIN)/python docker/lock.py

bench-query: install  ## search/ask latency, llama.cpp ratio, bandwidth bound, memory (about 12 min idle)
	$(BIN)/python bench/query_bench.py

bench-concurrency: install  ## /v1/ask under 1, 4 and 16 clients, defaults and model writing (about 12 min)
	$(BIN)/python bench/concurrency_bench.py
	$(BIN)/python bench/concurrency_bench.py --answer-mode generate

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
