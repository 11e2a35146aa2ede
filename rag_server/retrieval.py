"""Hybrid retrieval: dense (Chroma) + keyword (BM25 via bm25s), fused, with filters applied inside.

The keyword index is built from the store itself and rebuilt whenever the collection's revision
changes (every ingest, update or delete bumps it), so the two can never disagree for long.
Filters — including the caller's document access — become a Chroma `where` for the dense side
and a weight mask for BM25, so they act before top-k, never after: a document the caller may not
read never competes, so it can leak neither as a hit nor by pushing others out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag_server.auth import UNRESTRICTED, Access
from rag_server.embedding import Embedder
from rag_server.grounding import content_words
from rag_server.store import ACL_GROUP_PREFIX, ACL_PUBLIC, Chunk, ChunkStore, Hit

if TYPE_CHECKING:
    import bm25s

MetaValue = str | int | float | bool
Fusion = Literal["rrf", "weighted"]
_RRF_K = 60


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval: exact document ids, a source path prefix, exact metadata values, and
    the documents the caller may read (`access`; the service always sets it from the API key)."""

    document_id: tuple[str, ...] = ()
    source_prefix: str | None = None
    metadata: Mapping[str, MetaValue] = field(default_factory=dict)
    access: Access = UNRESTRICTED

    def narrows(self) -> bool:
        """True when something besides access restricts the result."""
        return bool(self.document_id) or self.source_prefix is not None or bool(self.metadata)

    def admits(self, chunk: Chunk) -> bool:
        if not self.access.admits(chunk.groups):
            return False
        if self.document_id and chunk.document_id not in self.document_id:
            return False
        if self.source_prefix is not None and not chunk.source.startswith(self.source_prefix):
            return False
        meta = chunk.metadata()
        return all(meta.get(key) == value for key, value in self.metadata.items())


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


class KeywordIndex:
    """BM25 over every chunk in the collection, plus the chunks themselves for filtering."""

    def __init__(self, store: ChunkStore) -> None:
        self.store = store
        self._stem = _stemmer()
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._chunks: list[Chunk] = []
        self._bm25: bm25s.BM25 | None = None
        self._df: Counter[str] = Counter()
        self._access_masks: dict[frozenset[str], np.ndarray] = {}

    @property
    def chunks(self) -> list[Chunk]:
        self.refresh()
        return self._chunks

    def refresh(self) -> None:
        """Rebuild when the store changed since the last build (cheap check: one metadata read).

        Works the same over an embedded store and a Chroma server: the revision lives in the
        collection's metadata, so a write by any process (rag-ingest, another replica) shows."""
        with self._lock:
            revision = self.store.refresh()
            if revision != self._revision:
                self._build(revision)

    def _build(self, revision: int) -> None:
        import bm25s

        chunks = self.store.all_chunks()
        bm25 = None
        if chunks:
            tokens = bm25s.tokenize(
                [c.text for c in chunks], stopwords="en", stemmer=self._stem, show_progress=False
            )
            if tokens.vocab:  # text of only stopwords and punctuation has no terms to index
                bm25 = bm25s.BM25()
                bm25.index(tokens, show_progress=False)
        df: Counter[str] = Counter()
        for chunk in chunks:
            df.update(content_words(chunk.text))
        self._chunks, self._bm25, self._df, self._revision = chunks, bm25, df, revision
        self._access_masks = {}

    def _mask(self, chunks: list[Chunk], filters: Filters) -> np.ndarray | None:
        """BM25 weights: 1 for chunks the filters admit. Access-only masks are cached per group set
        until the next rebuild, so the common case costs no Python loop per query."""
        if filters.narrows():
            return np.array([filters.admits(c) for c in chunks], dtype=np.float32)
        if filters.access.everything:
            return None
        key = filters.access.groups
        mask = self._access_masks.get(key)
        if mask is None or len(mask) != len(chunks):
            mask = np.array([filters.access.admits(c.groups) for c in chunks], dtype=np.float32)
            self._access_masks[key] = mask
        return mask

    def idf(self, word: str) -> float:
        """How rare a (stemmed) content word is in this collection: rare words say more."""
        return math.log((len(self._chunks) + 1) / (self._df.get(word, 0) + 0.5))

    def search(self, query: str, k: int, filters: Filters) -> list[tuple[Chunk, float]]:
        import bm25s

        self.refresh()
        chunks, bm25 = self._chunks, self._bm25
        if bm25 is None or not chunks:
            return []
        mask = self._mask(chunks, filters)
        if mask is not None and not mask.any():
            return []
        query_tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=self._stem, return_ids=False, show_progress=False
        )
        if not query_tokens or not query_tokens[0]:
            return []
        ids, scores = bm25.retrieve(
            query_tokens, k=min(k, len(chunks)), show_progress=False, weight_mask=mask, n_threads=1
        )
        return [(chunks[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


def _where(filters: Filters, keyword: KeywordIndex) -> dict[str, Any] | None:
    """The same filters as a Chroma `where`; a source prefix resolves to the matching ids."""
    clauses: list[dict[str, Any]] = [{key: value} for key, value in filters.metadata.items()]
    ids = set(filters.document_id)
    if filters.source_prefix is not None:
        prefixed = {
            c.document_id for c in keyword.chunks if c.source.startswith(filters.source_prefix)
        }
        ids = ids & prefixed if ids else prefixed
        if not ids:
            ids = {"\x00no-such-document"}
    if ids:
        clauses.append({"document_id": {"$in": sorted(ids)}})
    if not filters.access.everything:
        allowed: list[dict[str, Any]] = [{ACL_PUBLIC: True}]
        allowed += [{ACL_GROUP_PREFIX + g: True} for g in sorted(filters.access.groups)]
        clauses.append(allowed[0] if len(allowed) == 1 else {"$or": allowed})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class HybridRetriever:
    """Dense + BM25 candidates, fused; every returned Hit carries its dense cosine as `score`.

    The cosine is what the evidence gate and the verifier read as question–passage relevance,
    whichever side found the passage.
    """

    def __init__(
        self,
        store: ChunkStore,
        embedder: Embedder,
        keyword: KeywordIndex,
        fusion: Fusion = "rrf",
        candidates: int = 20,
        dense_weight: float = 0.5,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.keyword = keyword
        self.fusion = fusion
        self.candidates = candidates
        self.dense_weight = dense_weight

    def retrieve(
        self,
        query: str,
        top_k: int,
        filters: Filters | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """The fused top-k. `timings`, if given, receives each stage's milliseconds."""
        spent = timings if timings is not None else {}
        filters = filters or Filters()
        self.keyword.refresh()  # first, so the dense side also reads the latest revision
        pool = max(self.candidates, top_k)
        began = time.perf_counter()
        vector = self.embedder.embed_query(query)
        began = _lap(spent, "embed_query", began)
        dense = self.store.query(vector, pool, where=_where(filters, self.keyword))
        began = _lap(spent, "dense", began)
        sparse = self.keyword.search(query, pool, filters)
        began = _lap(spent, "keyword", began)
        fused = self._fuse(dense, sparse)[:top_k]
        cosine = {h.chunk.chunk_id: h.score for h in dense}
        missing = [c.chunk_id for c in fused if c.chunk_id not in cosine]
        if missing:
            cosine.update(self.store.similarities(vector, missing))
        _lap(spent, "fuse", began)
        return [Hit(c, cosine[c.chunk_id]) for c in fused]

    def _fuse(self, dense: Sequence[Hit], sparse: Sequence[tuple[Chunk, float]]) -> list[Chunk]:
        scores: dict[str, float] = {}
        chunks: dict[str, Chunk] = {}
        if self.fusion == "rrf":
            for rank, hit in enumerate(dense):
                scores[hit.chunk.chunk_id] = 1.0 / (_RRF_K + rank + 1)
                chunks[hit.chunk.chunk_id] = hit.chunk
            for rank, (chunk, _) in enumerate(sparse):
                scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + 1.0 / (_RRF_K + rank + 1)
                chunks[chunk.chunk_id] = chunk
        else:  # weighted: min-max normalised scores, blended
            for hit, norm in zip(dense, _normalise([h.score for h in dense]), strict=True):
                scores[hit.chunk.chunk_id] = self.dense_weight * norm
                chunks[hit.chunk.chunk_id] = hit.chunk
            for (chunk, _), norm in zip(sparse, _normalise([s for _, s in sparse]), strict=True):
                weight = (1 - self.dense_weight) * norm
                scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + weight
                chunks[chunk.chunk_id] = chunk
        order = sorted(scores, key=lambda cid: scores[cid], reverse=True)
        return [chunks[cid] for cid in order]


def _lap(timings: dict[str, float], name: str, since: float) -> float:
    """Record the milliseconds since `since` under `name`; return now, the next stage's start."""
    now = time.perf_counter()
    timings[name] = round((now - since) * 1000, 2)
    return now


def _normalise(values: list[float]) -> list[float]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    return [1.0 if hi == lo else (v - lo) / (hi - lo) for v in values]
