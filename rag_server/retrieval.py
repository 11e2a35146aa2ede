"""Hybrid retrieval: dense (Chroma) + keyword (BM25), fused, with filters applied inside.

The keyword side reads an immutable `KeywordSnapshot` of the collection, built aside by one
background thread per collection whenever the store's revision moves (every ingest, update or
delete bumps it) and swapped in as one reference: a request never waits for a rebuild and never
sees a half-built index. Filters, including the caller's access, become a Chroma `where` for the
dense side and a candidate mask for BM25, so they act before top-k. BM25's statistics (document
frequencies, average length) and the quote scorer's IDF are computed over the chunks the caller
may read, so a document the caller may not read moves neither a score nor a rank. Every fused hit
is checked once more against the store's current stamps before it leaves, since a snapshot may
be a rebuild behind the store.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rag_core.access import UNRESTRICTED, Access
from rag_core.embedding import Embedder
from rag_core.records import source_copy
from rag_core.store import ACL_GROUP_PREFIX, ACL_PUBLIC, Chunk, ChunkStore, Hit
from rag_server.grounding import content_words

log = logging.getLogger(__name__)

MetaValue = str | int | float | bool
Fusion = Literal["rrf", "weighted"]
_RRF_K = 60
# bm25s's defaults (Lucene variant), which built the index before: an all-groups caller, whose
# visible set is the whole collection, gets the ranking it got then.
_K1, _B = 1.5, 0.75
_BUILDER_NICE = 10  # the rebuild yields the CPU to requests on a busy machine


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


_local = threading.local()


def _stemmer() -> Any:
    """PyStemmer objects are not to be shared between threads: one per thread."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def bm25_terms(texts: list[str]) -> list[list[str]]:
    """bm25s's tokenizer: lower-cased words, English stopwords out, Snowball-stemmed."""
    import bm25s

    tokens = bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return [list(t) for t in tokens]  # type: ignore[union-attr]


def _term_ids(terms: Iterable[str], vocab: dict[str, int]) -> np.ndarray:
    """Terms as ids, adding new terms to `vocab` (ids stay stable from one build to the next)."""
    return np.fromiter((vocab.setdefault(t, len(vocab)) for t in terms), dtype=np.int32)


@dataclass(frozen=True)
class _Postings:
    """Term -> the chunks holding it (row numbers, ascending) and how often: a column-compressed
    term-by-chunk matrix, so a query touches only its own terms' chunks."""

    vocab: Mapping[str, int]
    indptr: np.ndarray
    rows: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, vocab: Mapping[str, int], per_chunk: Sequence[np.ndarray]) -> _Postings:
        n = max(len(per_chunk), 1)
        lengths = np.fromiter((len(a) for a in per_chunk), dtype=np.int64, count=len(per_chunk))
        terms = np.concatenate(per_chunk).astype(np.int64) if per_chunk else np.empty(0, np.int64)
        rows = np.repeat(np.arange(len(per_chunk), dtype=np.int64), lengths)
        keys, counts = np.unique(terms * n + rows, return_counts=True)  # sorted: term, then row
        indptr = np.searchsorted(keys // n, np.arange(len(vocab) + 1))
        return cls(vocab, indptr, (keys % n).astype(np.int32), counts.astype(np.float64))

    def of_term(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        tid = self.vocab.get(term)
        if tid is None or tid + 1 >= len(self.indptr):
            return self.rows[:0], self.counts[:0]
        lo, hi = self.indptr[tid], self.indptr[tid + 1]
        return self.rows[lo:hi], self.counts[lo:hi]


@dataclass(frozen=True)
class _Parsed:
    """One chunk's tokens as ids, kept so the next build re-tokenizes only what changed."""

    text: str
    terms: np.ndarray  # BM25 terms, repeated as often as they occur
    words: np.ndarray  # grounding's content words, once each


@dataclass(frozen=True)
class KeywordSnapshot:
    """The collection at one revision, as keyword search and the quote scorer read it. Built
    whole, then published by swapping one reference; never changed after, so a reader holding it
    needs no lock and cannot see a mix of two builds (chunks of one, stamps of another)."""

    revision: int
    chunks: tuple[Chunk, ...]
    terms: _Postings  # BM25 terms
    lengths: np.ndarray  # each chunk's BM25 length, in terms
    words: _Postings  # content words (grounding.content_words), for IDF
    public: np.ndarray  # per chunk: readable by every key
    stamped: Mapping[str, np.ndarray]  # group -> per chunk: stamped with that group
    parsed: Mapping[str, _Parsed] = field(repr=False)  # chunk id -> tokens, for the next build

    @classmethod
    def build(
        cls, revision: int, chunks: Sequence[Chunk], previous: KeywordSnapshot | None = None
    ) -> KeywordSnapshot:
        """Index `chunks`, reusing `previous`'s tokens for every chunk whose text is unchanged:
        after a small write only the written chunks are tokenized again."""
        term_vocab = dict(previous.terms.vocab) if previous else {}
        word_vocab = dict(previous.words.vocab) if previous else {}
        old = previous.parsed if previous else {}
        fresh = [c for c in chunks if (p := old.get(c.chunk_id)) is None or p.text != c.text]
        parsed = {}
        for chunk, terms in zip(fresh, bm25_terms([c.text for c in fresh]), strict=True):
            words = _term_ids(sorted(content_words(chunk.text)), word_vocab)
            parsed[chunk.chunk_id] = _Parsed(chunk.text, _term_ids(terms, term_vocab), words)
        parsed = {c.chunk_id: parsed.get(c.chunk_id) or old[c.chunk_id] for c in chunks}
        ordered = [parsed[c.chunk_id] for c in chunks]
        stamped: dict[str, np.ndarray] = {}
        for row, chunk in enumerate(chunks):
            for group in chunk.groups:
                stamped.setdefault(group, np.zeros(len(chunks), dtype=bool))[row] = True
        return cls(
            revision=revision,
            chunks=tuple(chunks),
            terms=_Postings.of(term_vocab, [p.terms for p in ordered]),
            lengths=np.array([len(p.terms) for p in ordered], dtype=np.float64),
            words=_Postings.of(word_vocab, [p.words for p in ordered]),
            public=np.array([not c.groups for c in chunks], dtype=bool),
            stamped=stamped,
            parsed=parsed,
        )

    def visible(self, access: Access) -> np.ndarray:
        """Per chunk: may the caller read it (public, or stamped with one of its groups)."""
        if access.everything:
            return np.ones(len(self.chunks), dtype=bool)
        mask = self.public.copy()
        for group in access.groups:
            stamped = self.stamped.get(group)
            if stamped is not None:
                mask |= stamped
        return mask

    def rows(self, access: Access) -> Callable[[str], np.ndarray]:
        """The chunks (row numbers) a content word occurs in, of those the caller may read. A
        word only documents the caller may not read contain is in none."""
        visible = self.visible(access)

        def rows(word: str) -> np.ndarray:
            found, _ = self.words.of_term(word)
            readable: np.ndarray = found[visible[found]]
            return readable

        return rows

    def idf(self, access: Access) -> Callable[[str], float]:
        """How rare a content word is among the chunks the caller may read: rare words say more
        (a word in a document it may not read weighs nothing)."""
        n = int(self.visible(access).sum())
        rows = self.rows(access)
        return lambda word: math.log((n + 1) / (len(rows(word)) + 0.5))

    def search(self, query: str, k: int, filters: Filters) -> list[tuple[Chunk, float]]:
        """BM25 top-k among the chunks `filters` admit, best first. Document frequencies and the
        average length are those of the chunks the caller may read (narrowing filters do not
        change a score, only which chunks compete)."""
        visible = self.visible(filters.access)
        candidates = visible
        if filters.narrows():
            admitted = np.fromiter((filters.admits(c) for c in self.chunks), dtype=bool)
            candidates = visible & admitted
        if not candidates.any():
            return []
        scores = self._bm25(bm25_terms([query])[0], visible)
        scores[~candidates] = 0.0
        rows = np.flatnonzero(scores > 0)
        if len(rows) > k:
            rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        return [(self.chunks[r], float(scores[r])) for r in rows]

    def _bm25(self, terms: list[str], visible: np.ndarray) -> np.ndarray:
        """Lucene BM25 of every chunk, with statistics over the `visible` chunks only."""
        scores = np.zeros(len(self.chunks), dtype=np.float64)
        n = int(visible.sum())
        if n == 0:
            return scores
        average = float(self.lengths[visible].mean())
        for term in terms:  # a repeated query term counts again, as in bm25s
            rows, counts = self.terms.of_term(term)
            seen = visible[rows]
            rows, counts = rows[seen], counts[seen]
            if len(rows) == 0:
                continue
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = _K1 * (1 - _B + _B * self.lengths[rows] / average)
            scores[rows] += idf * counts / (norm + counts)
        return scores


class KeywordIndex:
    """The collection's latest `KeywordSnapshot`, kept up to date by one background thread.

    `current` is what requests call: it returns the snapshot there is at once and, when the store
    has moved on, asks for a rebuild; many writes during one rebuild are covered by the next one.
    `refresh` waits for a snapshot of the store's current revision: for writers that must read
    their own write (uploads, deletes), start-up and tools. Only the very first build, when there
    is nothing yet to serve, makes a request wait.
    """

    def __init__(self, store: ChunkStore) -> None:
        self.store = store
        self._snapshot: KeywordSnapshot | None = None
        self._state = threading.Condition()
        self._requested = 0  # rebuilds asked for, counted
        self._done = 0  # the count the last finished rebuild covered
        self._building = False
        self._failure: Exception | None = None
        self._asked_for: int | None = None  # the store revision the last request was for
        self._store_lock = threading.Lock()  # store.refresh may reopen the embedded client

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """Every chunk at the store's current revision (waits for a rebuild if needed)."""
        return self.refresh().chunks

    def _revision(self) -> int:
        with self._store_lock:
            return self.store.refresh()

    def current(self) -> KeywordSnapshot:
        """The latest snapshot, without waiting for a rebuild (one is started if the store moved)."""
        revision = self._revision()
        snapshot = self._snapshot
        if snapshot is None:
            return self.refresh()
        if revision != snapshot.revision:
            with self._state:
                if self._asked_for != revision:
                    self._asked_for = revision
                    self._request()
        return snapshot

    def refresh(self, timeout: float | None = None) -> KeywordSnapshot:
        """A snapshot at least as new as the store's revision now: built, and waited for, unless
        the current one is. Raises what the rebuild raised, TimeoutError after `timeout` s."""
        revision = self._revision()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.revision == revision:
            return snapshot
        with self._state:
            ticket = self._request()
            if not self._state.wait_for(lambda: self._done >= ticket, timeout):
                raise TimeoutError(f"keyword index of '{self.store.name}' not rebuilt in time")
            if self._failure is not None:
                raise self._failure
            assert self._snapshot is not None
            return self._snapshot

    def search(self, query: str, k: int, filters: Filters) -> list[tuple[Chunk, float]]:
        """BM25 over the current snapshot (see KeywordSnapshot.search)."""
        return self.current().search(query, k, filters)

    def _request(self) -> int:
        """Ask for a rebuild (the caller holds `_state`); start the builder if it is idle."""
        self._requested += 1
        if not self._building:
            self._building = True
            name = f"keyword-index-{self.store.name}"
            threading.Thread(target=self._run, name=name, daemon=True).start()
        return self._requested

    def _run(self) -> None:
        """The builder: one rebuild per round, each covering every request made before it began;
        it exits when nothing is asked (a later request starts it again). On Linux it runs at a
        lower CPU priority than the request threads (a thread id takes its own nice value)."""
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _BUILDER_NICE)
        while True:
            with self._state:
                if self._done >= self._requested:
                    self._building = False
                    return
                ticket = self._requested
            failure: Exception | None = None
            try:
                snapshot = self._build(self._snapshot)
            except Exception as exc:  # kept, and raised to whoever waits; readers keep the old one
                log.exception("rebuilding the keyword index of '%s' failed", self.store.name)
                failure = exc
            with self._state:
                if failure is None:
                    self._snapshot = snapshot
                else:
                    self._asked_for = None  # the next request tries again
                self._failure = failure
                self._done = ticket
                self._state.notify_all()

    def _build(self, previous: KeywordSnapshot | None) -> KeywordSnapshot:
        """Read the revision first, then the chunks: a write in between is caught by the next
        request, which sees a newer revision than this snapshot's."""
        revision = self._revision()
        return KeywordSnapshot.build(revision, self.store.all_chunks(), previous)


def _where(filters: Filters, snapshot: KeywordSnapshot) -> dict[str, Any] | None:
    """The same filters as a Chroma `where`; a source prefix resolves to the matching ids."""
    clauses: list[dict[str, Any]] = [{key: value} for key, value in filters.metadata.items()]
    ids = set(filters.document_id)
    if filters.source_prefix is not None:
        prefixed = {
            c.document_id for c in snapshot.chunks if c.source.startswith(filters.source_prefix)
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
        snapshot: KeywordSnapshot | None = None,
    ) -> list[Hit]:
        """The fused top-k. `timings`, if given, receives each stage's milliseconds. `snapshot`:
        the keyword snapshot the request read already (`KeywordIndex.current()`), so one request
        asks the store for its revision once; taken here if not given."""
        spent = timings if timings is not None else {}
        filters = filters or Filters()
        if snapshot is None:  # first: taking it also reopens a store another process moved
            snapshot = self.keyword.current()
        pool = max(self.candidates, top_k)
        began = time.perf_counter()
        vector = self.embedder.embed_query(query)
        began = _lap(spent, "embed_query", began)
        dense = self.store.query(vector, pool, where=_where(filters, snapshot))
        began = _lap(spent, "dense", began)
        sparse = snapshot.search(query, pool, filters)
        began = _lap(spent, "keyword", began)
        fused = self._fuse(dense, sparse)
        # Keyword hits come from a snapshot that may be a rebuild behind the store: take each as
        # stored now (text, stamps, cosine), and let no hit out that the filters do not admit now
        # (a re-stamp took it away, a delete removed it). Dense hits were read just now.
        current = {h.chunk.chunk_id: h for h in dense}
        distinct = _Distinct(top_k)
        lo = 0
        while lo < len(fused) and not distinct.settled():
            # Once the places are taken, only a copy's page can still change them: the rest of
            # the candidates are read at once rather than a batch at a time.
            step = len(fused) if distinct.full() else top_k
            batch = [c.chunk_id for c in fused[lo : lo + step]]
            lo += step
            current.update(self.store.hits(vector, [i for i in batch if i not in current]))
            for i in batch:
                if i in current and filters.admits(current[i].chunk):
                    distinct.offer(current[i])
        _lap(spent, "fuse", began)
        return distinct.hits

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


class _Distinct:
    """The top k passages, each with words of its own. The same text ingested twice (a policy as
    PDF and as DOCX, a Sphinx page and its `_sources` copy) gives passages with nearly the same
    words, and each took a place of the top k: a quarter of Debian Policy's hits repeated one
    ranked higher (docs/evaluation.md). A passage whose content words are 90% those of one
    already taken adds nothing, and the higher ranked keeps the place, unless it is a Sphinx
    page's source copy and the other is not: then the page takes the place, so that a citation
    points to the page a reader reads, not to `_sources/….rst.txt` (39 of Debian Policy's 64
    citations did, docs/evaluation.md)."""

    SAME = 0.9

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.hits: list[Hit] = []
        self.taken: list[set[str]] = []

    def offer(self, hit: Hit) -> None:
        """Take `hit` as the next passage while places are left, as the page in its copy's
        place, or not at all."""
        if self.full() and _copy(hit):  # it can take no place any more
            return
        words = content_words(hit.chunk.text)
        for k, seen in enumerate(self.taken):
            if words and len(words & seen) >= self.SAME * len(words | seen):
                if _copy(self.hits[k]) and not _copy(hit):
                    self.hits[k] = hit
                return
        if len(self.hits) < self.top_k:
            self.taken.append(words)
            self.hits.append(hit)

    def full(self) -> bool:
        return len(self.hits) >= self.top_k

    def settled(self) -> bool:
        """The top k are taken and no later passage can change them: none is a source copy
        whose page may still come."""
        return self.full() and not any(map(_copy, self.hits))


def _copy(hit: Hit) -> bool:
    return source_copy(hit.chunk.source)


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
