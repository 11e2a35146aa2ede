"""The Chroma collection of chunks: writes and reads, bound to the embedder that built it.
Shared by ingest and serve. Records: rag_core.records; clients: rag_core.chroma_client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_core import embedder_stamp
from rag_core.chroma_client import (
    TornReadError,
    open_client,
    reachable,
    reopen_embedded,
    reread_on_race,
)
from rag_core.embedding import EmbedderIdentity
from rag_core.errors import CollectionNotFoundError, StoreUnavailableError
from rag_core.records import (
    ACL_GROUP_PREFIX,
    ACL_PUBLIC,
    Chunk,
    DocumentState,
    Hit,
    Version,
    chunks_from,
    version,
)
from rag_core.revision import RevisionCounter

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

# The store's users import records and the client from here, as before the split.
__all__ = [
    "ACL_GROUP_PREFIX",
    "ACL_PUBLIC",
    "Chunk",
    "ChunkStore",
    "DocumentState",
    "Hit",
    "Version",
    "open_client",
    "reopen_embedded",
]

log = logging.getLogger(__name__)
_PAGE = 1000  # rows per read when scanning the whole collection
# How many candidates Chroma's HNSW search keeps while it walks the graph (its default is 100).
# Chroma rebuilds the graph of the chunks written since its last save (every 1,000) at each open,
# and no two builds are alike: at 100, two to three of HIPAA's 80 questions found another top 20
# after a restart, and in one open of five the BAA passage at cosine 0.39, fourth by exact
# cosine, was not in the top 60. At 400 every open of the seven evaluation collections gave
# the exact top 20, at 1.06 times the query time over 20,000 vectors (docs/evaluation.md).
SEARCH_EF = 400


def _whole(metas: Sequence[Any]) -> Sequence[Any]:
    """One read's metadata column, checked: a record without metadata was deleted under the read."""
    if any(meta is None for meta in metas):
        raise TornReadError("a record was deleted while it was being read")
    return metas


class ChunkStore:
    """One collection, bound to the embedder that built it."""

    def __init__(
        self,
        client: ClientAPI,
        name: str,
        identity: EmbedderIdentity,
        reopen: Callable[[], ClientAPI] | None = None,
        create: bool = True,
    ) -> None:
        self.client = client
        self.name = name
        self.identity = identity
        self._reopen = reopen
        self._reopening = threading.Lock()  # one reopen at a time: readers race to catch up
        self._revisions = RevisionCounter(self._fresh_metadata, self._write_metadata)
        self._unfingerprinted = False  # a store from before fingerprints, until its next write
        self._narrow_told = False  # a reader warned that the collection searches narrowly
        self.collection: Collection = self._open_collection(create)
        self.max_batch = max(1, int(client.get_max_batch_size()))

    @reachable
    def _open_collection(self, create: bool = True) -> Collection:
        if not create:
            from chromadb.errors import NotFoundError

            try:
                self.client.get_collection(self.name, embedding_function=None)
            except NotFoundError:
                raise CollectionNotFoundError(f"no collection named '{self.name}'") from None
        collection = self.client.get_or_create_collection(
            self.name,
            metadata=embedder_stamp.stamp(self.identity),
            configuration={"hnsw": {"space": "cosine", "ef_search": SEARCH_EF}},
            embedding_function=None,  # never Chroma's default: it would download a model
        )
        hnsw = (collection.configuration_json or {}).get("hnsw") or {}
        breadth = int(hnsw.get("ef_search", SEARCH_EF))
        if hnsw and breadth < SEARCH_EF:
            # A collection made before, or by hand: a writer raises its search breadth (Chroma
            # keeps a collection's configuration as made); a reader leaves the store as it is,
            # and says so once, not at every reopen.
            if create:
                collection.modify(configuration={"hnsw": {"ef_search": SEARCH_EF}})
            elif not self._narrow_told:
                self._narrow_told = True
                log.warning(
                    "collection '%s' searches %d candidates, not %d: its nearest passages may "
                    "differ from one start to the next; the next rag-ingest into it raises the "
                    "number",
                    self.name,
                    breadth,
                    SEARCH_EF,
                )
        if not embedder_stamp.is_stamped(collection.metadata or {}) and collection.count() == 0:
            # An empty collection made elsewhere (e.g. by hand): claim it for our embedder.
            collection.modify(metadata=embedder_stamp.stamp(self.identity))
        meta = collection.metadata or {}
        embedder_stamp.check_stamp(self.name, meta, self.identity)
        before = self._unfingerprinted  # warn once, not at every reopen
        self._unfingerprinted = not embedder_stamp.is_fingerprinted(meta)
        if self._unfingerprinted and not before and self.identity.fingerprint:
            log.warning(
                "collection '%s' does not record which model files built it (it predates "
                "fingerprints); accepted on the name and dimension of %s, and bound to these "
                "model files at its next write",
                self.name,
                self.identity.name,
            )
        stored = embedder_stamp.stamped_variant(meta)
        if not embedder_stamp.same_vectors(stored, self.identity.variant):
            log.warning(
                "collection '%s' was embedded with the %s variant of %s and is queried with the "
                "%s variant: same model, vectors differ slightly (see bench/results/embedder.md)",
                self.name,
                stored,
                self.identity.name,
                self.identity.variant,
            )
        return collection

    def _fresh_metadata(self) -> dict[str, Any]:
        """The collection's metadata as stored now (another process may have changed it)."""
        return dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})

    def _write_metadata(self, meta: dict[str, Any]) -> None:
        self.collection.modify(metadata=meta)

    def _bind_fingerprint(self) -> None:
        """A store from before fingerprints is bound to the model files of its first writer
        since: from then on its vectors are (in part) this model's, and any other is refused."""
        if not self._unfingerprinted or not self.identity.fingerprint:
            return
        meta = self._fresh_metadata()
        if not embedder_stamp.is_fingerprinted(meta):
            meta[embedder_stamp.FINGERPRINT_KEY] = self.identity.fingerprint
            self._write_metadata(meta)
        else:  # another writer bound it meanwhile: it must be ours
            embedder_stamp.check_stamp(self.name, meta, self.identity)
        self._unfingerprinted = False

    def check(self) -> None:
        """Readiness: the store answers and the collection still belongs to our embedder."""
        try:
            self.client.heartbeat()
            collection = self.client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            raise StoreUnavailableError(f"vector store not reachable: {exc}") from exc
        embedder_stamp.check_stamp(self.name, collection.metadata or {}, self.identity)

    @reachable
    def count(self) -> int:
        return int(self.collection.count())

    @reachable
    def upsert(
        self, chunks: Sequence[Chunk], embeddings: np.ndarray, revoked: Iterable[str] = ()
    ) -> None:
        """Idempotent writes in the largest batches Chroma accepts. `revoked`: groups some of
        these documents were stamped with before and are not any more."""
        revoked = tuple(revoked)
        if chunks:
            self._bind_fingerprint()
        for lo in range(0, len(chunks), self.max_batch):
            part = chunks[lo : lo + self.max_batch]
            self.collection.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=embeddings[lo : lo + self.max_batch],
                documents=[c.text for c in part],
                metadatas=[c.metadata(revoked) for c in part],  # type: ignore[misc]
            )

    @reachable
    def delete_ids(self, ids: Sequence[str]) -> None:
        for lo in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=list(ids[lo : lo + self.max_batch]))

    @reachable
    def delete_document(self, document_id: str) -> int:
        """Remove every chunk of one document; the number removed (0: there was no such document)."""
        ids = self.collection.get(where={"document_id": document_id}, include=[])["ids"]
        if ids:
            self.bump_revision()
            self.delete_ids(ids)
            self.bump_revision()
        return len(ids)

    @reachable
    @reread_on_race
    def document_versions(self, document_id: str) -> dict[str, Version]:
        """Each stored chunk of one document and the write it belongs to, as stored now (metadata
        only): what a writer reads back to settle which version of the document stays."""
        got = self.collection.get(where={"document_id": document_id}, include=["metadatas"])
        return {
            cid: version(meta)
            for cid, meta in zip(got["ids"], _whole(got["metadatas"] or []), strict=True)
        }

    def _scan(self, documents: bool = False) -> Iterator[tuple[str, Mapping[str, Any], str]]:
        """Every record, a page at a time: (id, metadata, text or "")."""
        include: list[Any] = ["metadatas", "documents"] if documents else ["metadatas"]
        offset = 0
        while True:
            page = self.collection.get(include=include, limit=_PAGE, offset=offset)
            ids, metas = page["ids"], page["metadatas"] or []
            texts = page["documents"] or [""] * len(ids)
            yield from zip(ids, _whole(metas), texts, strict=True)
            if len(ids) < _PAGE:
                return
            offset += len(ids)

    @reachable
    @reread_on_race
    def all_chunks(self) -> list[Chunk]:
        return [
            Chunk.from_record(cid, text, meta) for cid, meta, text in self._scan(documents=True)
        ]

    @reachable
    def revision(self) -> int:
        """The collection's write counter, read fresh (another process may have written)."""
        return self._revisions.current()

    def refresh(self) -> int:
        """The current revision; when another process moved it, reopen an embedded store first,
        so dense queries see the same rows as the keyword index rebuilt from this revision."""
        revision = self.revision()
        if self._revisions.moved(revision):
            self.catch_up()
        self._revisions.seen = revision
        return revision

    def catch_up(self, stale: Collection | None = None) -> None:
        """Reopen an embedded store, whose in-memory vector index misses other clients' writes;
        with `stale`, only if no other reader has reopened it since it read `stale`. A Chroma
        server has one index, always current: nothing to do."""
        if self._reopen is None:
            return
        with self._reopening:
            if stale is None or self.collection is stale:
                self.client = self._reopen()
                self.collection = self._open_collection()

    @reachable
    def bump_revision(self) -> None:
        self._revisions.bump()

    @reachable
    @reread_on_race
    def document_states(self) -> dict[str, DocumentState]:
        """Every document in the collection, from chunk metadata alone (the store is the truth)."""
        states: dict[str, DocumentState] = {}
        for chunk_id, meta, _ in self._scan():
            states.setdefault(str(meta["document_id"]), DocumentState()).add(chunk_id, meta)
        return states

    @reachable
    @reread_on_race
    def query(
        self, embedding: Sequence[float], top_k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity (1 - distance), best first, among those `where` admits."""
        result = self.collection.query(
            query_embeddings=[list(embedding)],  # type: ignore[arg-type]
            n_results=top_k,
            where=where,
            include=["documents", "metadatas", "distances"],  # type: ignore[list-item]
        )
        docs = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        dists = (result["distances"] or [[]])[0]
        chunks = chunks_from(result["ids"][0], docs, _whole(metas))
        return [Hit(c, 1.0 - float(dist)) for c, dist in zip(chunks, dists, strict=True)]

    @reachable
    @reread_on_race
    def fetch(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """The given chunks as stored now (text, metadata, access stamps); ids no longer stored
        are absent. Readers of a derived index re-check what it returns against these."""
        chunks, _ = self._get(ids, vectors=False)
        return {c.chunk_id: c for c in chunks}

    @reachable
    @reread_on_race
    def document_chunks(self, document_id: str) -> list[Chunk]:
        """Every chunk of one document as stored now, in order: what a writer just wrote, which
        a derived index (the keyword snapshot) may not show yet, or may show replaced already."""
        got = self.collection.get(
            where={"document_id": document_id}, include=["documents", "metadatas"]
        )
        texts = got["documents"] or [""] * len(got["ids"])
        chunks = chunks_from(got["ids"], texts, _whole(got["metadatas"] or []))
        return sorted(chunks, key=lambda c: c.chunk_index)

    @reachable
    @reread_on_race
    def hits(self, embedding: Sequence[float], ids: Sequence[str]) -> dict[str, Hit]:
        """`fetch`, with each chunk's cosine to the query (vectors are normalised: a dot product)."""
        chunks, vectors = self._get(ids, vectors=True)
        if vectors is None or not chunks:
            return {}
        query = np.asarray(embedding, dtype=np.float32)
        return {
            c.chunk_id: Hit(c, float(np.dot(np.asarray(vector, dtype=np.float32), query)))
            for c, vector in zip(chunks, vectors, strict=True)
        }

    def _get(self, ids: Sequence[str], vectors: bool) -> tuple[list[Chunk], Any]:
        """The stored chunks of `ids` (those still stored), and their vectors when asked for."""
        if not ids:
            return [], None
        include: Any = ["documents", "metadatas", *(["embeddings"] if vectors else [])]
        got = self.collection.get(ids=list(ids), include=include)
        texts = got["documents"] or [""] * len(got["ids"])
        chunks = chunks_from(got["ids"], texts, _whole(got["metadatas"] or []))
        return chunks, got["embeddings"] if vectors else None
