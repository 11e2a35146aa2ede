# Set-up and everyday commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: help install run test test-fast image lint format bench bench-ingest bench-query bench-batching bench-concurrency bench-memory lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# torch: the CPU build. Where pip would otherwise fetch the CUDA build (gigabytes), point it at a
# CPU wheel index, e.g. make install TORCH_PIP_ARGS='--index-url https://download.pytorch.org/whl/cpu'
TORCH_SPEC     ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# llama.cpp's CPU features are fixed at build time (docker/llama-cmake-args: AVX2, no AVX-512, no
# AMX), so one build runs on every x86-64 machine we use; override to tune for a known fleet.
LLAMA_CMAKE_ARGS ?= $(shell cat docker/llama-cmake-args)
PIP := $(BIN)/pip --disable-pip-version-check

$(BIN)/.installed: pyproject.toml docker/llama-cmake-args scripts/install-llama.sh
	@echo "[install 1/4] virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@# The CPU wheel first: anything that asks for torch later is then satisfied without CUDA.
	@echo "[install 2/4] $(TORCH_SPEC), CPU build"
	$(PIP) install -q $(TORCH_PIP_ARGS) '$(TORCH_SPEC)'
	@echo "[install 3/4] llama-cpp-python, built portably (minutes the first time, then reused)"
	LLAMA_CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' bash scripts/install-llama.sh $(BIN)
	@echo "[install 4/4] rag-server with its dependencies and dev tools"
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed  ## create .venv with everything (torch CPU, llama.cpp, models)

run: install  ## serve on the embedded defaults, ingesting the examples if the store is empty
	$(BIN)/rag-ingest examples/docs --if-empty
	@# The first run creates an admin key and prints it once; later runs keep the existing keys.
	$(BIN)/rag-server keys add --id local-admin --role admin --groups '*' --if-none
	$(BIN)/rag-server

test: install  ## the whole suite, slow model and process tests included
	bash .ci/ensure-kubectl  # the manifest tests render k8s/ with kubectl kustomize
	bash .ci/ensure-chromium  # the web page's browser tests drive chromium (tests/test_web_browser.py)
	bash .ci/ensure-podman  # the image test builds and runs the container (tests/test_image.py)
	$(BIN)/python -m pytest

test-fast: install  ## everything but the tests marked slow
	$(BIN)/python -m pytest -m "not slow"

image: install  ## the container image rag-server:VERSION and :latest, built with no network
	bash .ci/ensure-podman
	LLAMA_CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' VENV='$(VENV)' TORCH_PIP_ARGS='$(TORCH_PIP_ARGS)' bash scripts/build-image.sh

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: bench-ingest bench-query bench-batching bench-concurrency bench-memory  ## every benchmark below (about 65 min idle)

bench-ingest: install  ## ingestion and embedder backends: speed and hit@5 (about 19 min idle)
	$(BIN)/pip install -q -e '.[dev,openvino]'  # the openvino runtime only: torch stays 2.13.0
	$(BIN)/python bench/ingest_bench.py

lock: install  ## pin the image's run-time packages to this venv's versions (docker/constraints.txt)
	$(BIN)/python docker/lock.py

bench-query: install  ## search/ask latency, llama.cpp ratio, bandwidth bound, memory (about 12 min idle)
	$(BIN)/python bench/query_bench.py

bench-batching: install  ## query-time batching before and after: candidates' embedding and answer model (about 4 min)
	$(BIN)/python bench/batching_bench.py

bench-concurrency: install  ## /v1/ask under 1, 4 and 16 clients, defaults and model writing (about 12 min)
	$(BIN)/python bench/concurrency_bench.py
	$(BIN)/python bench/concurrency_bench.py --answer-mode generate

bench-memory: install  ## server memory under replacing uploads (about 8 min)
	$(BIN)/python bench/upload_memory_bench.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
