"""A collection remembers the model files that built it, not only the embedder's label: another
model of the same size under the default name is refused, with both named."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from rag_core.embedding import (
    Embedder,
    EmbedderIdentity,
    load_embedder,
    model_fingerprint,
    packaged_model_path,
)
from rag_core.errors import EmbedderMismatchError
from rag_core.settings import load_settings
from rag_core.store import Chunk, ChunkStore, open_client

pytestmark = pytest.mark.slow  # a second model is copied and loaded


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model with one weight nudged: a different model, the same size and files."""
    from safetensors.torch import load_file, save_file

    target = tmp_path_factory.mktemp("other") / "all-MiniLM-L6-v2"
    shutil.copytree(packaged_model_path(), target)
    weights = load_file(target / "model.safetensors")
    name = sorted(weights)[0]
    weights[name].view(-1)[0] += 0.01
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.fixture(scope="module")
def impostor(other_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """That model loaded under the default label (RAG_EMBEDDER__MODEL_PATH set, name unchanged)."""
    settings = load_settings(embedder={"model_path": str(other_model), "backend": "torch"})
    return load_embedder(settings.embedder, tmp_path_factory.mktemp("models"))


def _chunk(text: str = "Hotel stays are capped at 165 euros per night.") -> Chunk:
    return Chunk(
        chunk_id="c1",
        document_id="policy.md",
        source="policy.md",
        title="Policy",
        text=text,
        start=0,
        end=len(text),
        chunk_index=0,
        chunk_count=1,
        content_hash="h",
        pipeline="test",
        ingested_at="2026-01-01T00:00:00Z",
    )


def test_a_store_built_by_other_model_files_under_the_same_name_is_refused(
    tmp_path: Path, embedder: Embedder, impostor: Embedder
) -> None:
    assert impostor.identity.name == embedder.identity.name  # the label alone cannot tell
    assert impostor.identity.dim == embedder.identity.dim
    client = open_client(load_settings(data_dir=tmp_path))
    store = ChunkStore(client, "docs", embedder.identity)
    store.upsert([_chunk()], embedder.embed_texts([_chunk().text]))
    with pytest.raises(EmbedderMismatchError) as refused:
        ChunkStore(client, "docs", impostor.identity)
    message = str(refused.value)
    assert embedder.identity.fingerprint[:12] in message
    assert impostor.identity.fingerprint[:12] in message
    ChunkStore(client, "docs", embedder.identity)  # its own model still opens it


def test_a_store_from_before_fingerprints_is_accepted_then_bound_by_its_next_write(
    tmp_path: Path,
    embedder: Embedder,
    impostor: Embedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Existing stores keep working (their vectors cannot be checked without re-embedding them):
    accepted on name and size with a warning, and bound to the model files of the first write."""
    client = open_client(load_settings(data_dir=tmp_path))
    unknown = EmbedderIdentity(embedder.identity.name, embedder.identity.dim, "onnx")
    old = ChunkStore(client, "docs", unknown)  # what an older release wrote: no fingerprint
    old.upsert([_chunk()], embedder.embed_texts([_chunk().text]))
    with caplog.at_level(logging.WARNING):
        store = ChunkStore(client, "docs", embedder.identity)
    assert "predates fingerprints" in caplog.text
    ChunkStore(client, "docs", impostor.identity)  # not yet bound: the label is all there is
    store.upsert([_chunk()], embedder.embed_texts([_chunk().text]))
    with pytest.raises(EmbedderMismatchError):
        ChunkStore(client, "docs", impostor.identity)
    ChunkStore(client, "docs", embedder.identity)


def test_the_fingerprint_is_of_the_files_contents_and_cached_until_they_change(
    tmp_path: Path, other_model: Path, embedder: Embedder
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(packaged_model_path(), copy)
    cache = tmp_path / "cache"
    first = model_fingerprint(copy, cache)
    assert first == embedder.identity.fingerprint  # the same files elsewhere: the same model
    assert model_fingerprint(other_model) != first
    assert len(list(cache.iterdir())) == 1 and model_fingerprint(copy, cache) == first
    config = copy / "config.json"
    config.write_text(
        config.read_text().replace('"layer_norm_eps": 1e-12', '"layer_norm_eps": 2e-12')
    )
    assert model_fingerprint(copy, cache) != first  # a changed config is another model
