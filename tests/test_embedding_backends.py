"""The embedder's ONNX Runtime / OpenVINO backends: same model, exported locally once, same vectors
(fp32) or close ones (int8), same rankings; and how a collection treats a backend change."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest

from rag_core.embedding import Embedder, load_embedder
from rag_core.errors import ConfigError, EmbedderMismatchError
from rag_core.settings import Settings, load_settings
from rag_core.store import ChunkStore, open_client

PASSAGES = [
    "Employees receive 28 days of paid annual leave, including public holidays.",
    "Hotel stays are reimbursed up to 165 euros per night in capital cities.",
    "The first working day starts at 09:30 at the reception on floor 4.",
    "Every package must have a maintainer listed in the control file.",
]
QUERIES = [
    ("How many days of holiday do staff get?", 0),
    ("What is the nightly cap for hotels?", 1),
    ("Where do I go on my first day?", 2),
    ("Who is responsible for a package?", 3),
]

pytestmark = pytest.mark.slow  # each backend exports the model once (a few seconds)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def torch_embedder(models_dir: Path) -> Embedder:
    """sentence-transformers on torch, as shipped: the reference every backend must match."""
    return _load("torch", "none", models_dir)


def _load(backend: str, quantize: str, models_dir: Path) -> Embedder:
    settings = load_settings(embedder={"backend": backend, "quantize": quantize})
    return load_embedder(settings.embedder, models_dir)


@pytest.mark.parametrize(
    ("backend", "quantize", "min_cosine"),
    [
        ("onnx", "none", 0.9999),
        ("onnx", "int8", 0.97),
        pytest.param(
            "openvino",
            "none",
            0.9999,
            marks=pytest.mark.skipif(
                importlib.util.find_spec("openvino") is None, reason="openvino extra not installed"
            ),
        ),
    ],
)
def test_a_backend_gives_the_torch_vectors_and_rankings(
    backend: str, quantize: str, min_cosine: float, torch_embedder: Embedder, models_dir: Path
) -> None:
    embedder = torch_embedder
    other = _load(backend, quantize, models_dir)
    assert other.identity == embedder.identity  # same model: name and dimension
    assert other.identity.variant == (backend if quantize == "none" else f"{backend}-{quantize}")
    reference = embedder.embed_texts(PASSAGES)
    vectors = other.embed_texts(PASSAGES)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert (vectors * reference).sum(axis=1).min() >= min_cosine
    for query, expected in QUERIES:
        scores = vectors @ np.asarray(other.embed_query(query), dtype=np.float32)
        assert int(np.argmax(scores)) == expected, query
    # The tokenizer sizes chunks exactly as torch's does, so chunking cannot drift.
    assert other.tokenize(PASSAGES[0]) == embedder.tokenize(PASSAGES[0])
    assert other.max_tokens == embedder.max_tokens


def test_the_export_is_made_once_and_reused(models_dir: Path) -> None:
    _load("onnx", "int8", models_dir)
    files = sorted(models_dir.rglob("*.onnx"))
    assert {f.name for f in files} >= {"model.onnx", "model_int8.onnx"}
    stamps = [f.stat().st_mtime_ns for f in files]
    _load("onnx", "int8", models_dir)
    assert [f.stat().st_mtime_ns for f in sorted(models_dir.rglob("*.onnx"))] == stamps
    assert not list(models_dir.rglob("*.partial"))  # written atomically
    # Readable by other users: the image exports as root at build time and runs as uid 10001.
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in files)


def test_int8_without_an_onnx_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="RAG_EMBEDDER"):
        load_settings(embedder={"backend": "torch", "quantize": "int8"})


def test_another_precision_of_the_same_model_warns_but_another_model_is_refused(
    settings: Settings,
    torch_embedder: Embedder,
    models_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = open_client(settings)
    ChunkStore(client, "docs", torch_embedder.identity)  # built with torch
    with caplog.at_level(logging.WARNING, logger="rag_core.store"):
        ChunkStore(client, "docs", _load("onnx", "none", models_dir).identity)
    assert not caplog.text  # fp32 ONNX gives torch's vectors: nothing to warn about
    quantized = _load("onnx", "int8", models_dir)
    with caplog.at_level(logging.WARNING, logger="rag_core.store"):
        store = ChunkStore(client, "docs", quantized.identity)
    assert "torch" in caplog.text and "onnx-int8" in caplog.text
    assert store.collection.metadata["embed_variant"] == "torch"  # the builder's, kept
    other = type(torch_embedder.identity)("someone/else", 384, "onnx")
    with pytest.raises(EmbedderMismatchError):
        ChunkStore(client, "docs", other)
