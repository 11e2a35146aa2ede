"""Which embedder built a collection, as the collection's own metadata records it, and the check
that refuses a collection another model built: its vectors would not be comparable with ours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag_core.embedding import EmbedderIdentity
from rag_core.errors import EmbedderMismatchError

MODEL_KEY = "embed_model"
DIM_KEY = "embed_dim"
VARIANT_KEY = "embed_variant"  # torch, onnx, onnx-int8...: recorded, mismatch only warns
FINGERPRINT_KEY = "embed_fingerprint"  # sha256 of the model files: a mismatch refuses


def stamp(identity: EmbedderIdentity) -> dict[str, str | int]:
    """The collection metadata that records `identity` (no fingerprint key when it has none)."""
    meta: dict[str, str | int] = {
        MODEL_KEY: identity.name,
        DIM_KEY: identity.dim,
        VARIANT_KEY: identity.variant,
    }
    if identity.fingerprint:
        meta[FINGERPRINT_KEY] = identity.fingerprint
    return meta


def is_stamped(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get(MODEL_KEY))


def is_fingerprinted(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get(FINGERPRINT_KEY))


def stamped_variant(meta: Mapping[str, Any]) -> str:
    """The variant that built the collection; torch for one from before variants were recorded."""
    return str(meta.get(VARIANT_KEY, "torch"))


def same_vectors(variant: str, other: str) -> bool:
    """torch, onnx and openvino in fp32 give the same vectors; only quantization changes them."""
    return _precision(variant) == _precision(other)


def _precision(variant: str) -> str:
    return variant.partition("-")[2] or "fp32"


def check_stamp(name: str, meta: Mapping[str, Any], identity: EmbedderIdentity) -> None:
    """Refuse collection `name` when another model built it: another name or size, or (where both
    sides know theirs) other model files under the same name."""
    stored = EmbedderIdentity(
        str(meta.get(MODEL_KEY, "")),
        int(meta.get(DIM_KEY, 0) or 0),
        fingerprint=str(meta.get(FINGERPRINT_KEY, "") or ""),
    )
    if stored != identity:
        raise EmbedderMismatchError(
            f"collection '{name}' was built with embedder {stored.describe()}, but the "
            f"configured embedder is {identity.describe()}; use the original embedder "
            "(RAG_EMBEDDER__NAME / RAG_EMBEDDER__MODEL_PATH) or another collection"
        )
    built, configured = stored.fingerprint, identity.fingerprint
    if built and configured and built != configured:
        raise EmbedderMismatchError(
            f"collection '{name}' was built with embedder {stored.describe()} from model "
            f"files sha256 {built[:12]}, but the configured embedder {identity.describe()}"
            f" has model files sha256 {configured[:12]}: another model under the same name; "
            "use the model that built it (RAG_EMBEDDER__MODEL_PATH) or another collection"
        )
