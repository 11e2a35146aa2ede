"""The collections a server serves: each one's store, keyword index and retriever, opened once.

Requests name a collection; the first request to a collection opens it (Chroma handle, BM25
index) and later ones reuse it, so nothing is built per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag_server.auth import Access
from rag_server.embedding import Embedder
from rag_server.retrieval import HybridRetriever, KeywordIndex
from rag_server.settings import Settings, validate_collection_name
from rag_server.store import Chunk, ChunkStore, reopen_embedded

if TYPE_CHECKING:
    from chromadb.api import ClientAPI


@dataclass(frozen=True)
class DocumentInfo:
    """One document as the store knows it (from its chunks' metadata)."""

    document_id: str
    source: str
    title: str
    groups: tuple[str, ...]
    chunks: int
    pages: int | None
    ingested_at: str

    @classmethod
    def of(cls, chunks: list[Chunk]) -> DocumentInfo:
        first = chunks[0]
        pages = {c.page for c in chunks if c.page is not None}
        return cls(
            first.document_id,
            first.source,
            first.title,
            first.groups,
            len(chunks),
            max(pages) if pages else None,
            max(c.ingested_at for c in chunks),
        )


@dataclass
class Corpus:
    """One collection, ready to query."""

    name: str
    store: ChunkStore
    keyword: KeywordIndex
    retriever: HybridRetriever

    def documents(self, access: Access) -> list[DocumentInfo]:
        """Every document the caller may read, by id."""
        by_document: dict[str, list[Chunk]] = {}
        for chunk in self.keyword.chunks:
            if access.admits(chunk.groups):
                by_document.setdefault(chunk.document_id, []).append(chunk)
        return [DocumentInfo.of(by_document[d]) for d in sorted(by_document)]

    def document(self, document_id: str, access: Access) -> DocumentInfo | None:
        chunks = [c for c in self.keyword.chunks if c.document_id == document_id]
        if not chunks or not access.admits(chunks[0].groups):
            return None
        return DocumentInfo.of(chunks)


class Catalog:
    """Opens collections on demand over one Chroma client and one embedder."""

    def __init__(self, settings: Settings, client: ClientAPI, embedder: Embedder) -> None:
        self.settings = settings
        self.client = client
        self.embedder = embedder
        self.default = settings.collection
        self.reopen = reopen_embedded(settings)
        self._lock = threading.Lock()
        self._open: dict[str, Corpus] = {}
        # One writer at a time in this process (uploads, deletes): writes bump revisions in order.
        self.write_lock = threading.Lock()

    def get(self, name: str | None = None, create: bool = False) -> Corpus:
        """The collection `name` (default: the configured one). CollectionNotFoundError if it does
        not exist and `create` is false."""
        name = validate_collection_name(name or self.default)
        corpus = self._open.get(name)
        if corpus is not None:
            return corpus
        with self._lock:
            corpus = self._open.get(name)
            if corpus is None:
                store = ChunkStore(
                    self.client, name, self.embedder.identity, self.reopen, create=create
                )
                keyword = KeywordIndex(store)
                keyword.refresh()
                r = self.settings.retrieval
                retriever = HybridRetriever(
                    store, self.embedder, keyword, r.fusion, r.candidates, r.dense_weight
                )
                corpus = Corpus(name, store, keyword, retriever)
                self._open[name] = corpus
        return corpus

    def names(self) -> list[str]:
        """Collections in the store, sorted."""
        return sorted(c.name for c in self.client.list_collections())
