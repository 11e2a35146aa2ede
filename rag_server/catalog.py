"""The collections a server serves: each one's store, keyword index and retriever, opened once.

Requests name a collection; the first request to a collection opens it (Chroma handle, BM25
index) and later ones reuse it, so nothing is built per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rag_core.access import Access
from rag_core.embedding import Embedder
from rag_core.errors import NotFoundError
from rag_core.originals import OriginalFiles, is_files_collection
from rag_core.settings import Settings, validate_collection_name
from rag_core.store import Chunk, ChunkStore, reopen_embedded
from rag_server.retrieval import HybridRetriever, KeywordIndex

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
    files: OriginalFiles  # the original files of its uploaded documents

    def documents(self, access: Access) -> list[DocumentInfo]:
        """Every document the caller may read, by id, as of the keyword snapshot (a rebuild
        behind after another process's write), each checked against its stamps in the store now:
        a document a re-stamp took away is never listed, not even from an old snapshot."""
        by_document: dict[str, list[Chunk]] = {}
        for chunk in self.keyword.current().chunks:
            if access.admits(chunk.groups):
                by_document.setdefault(chunk.document_id, []).append(chunk)
        return self._readable(
            [DocumentInfo.of(by_document[d]) for d in sorted(by_document)], access, by_document
        )

    def document(self, document_id: str, access: Access) -> DocumentInfo | None:
        found = self._found(document_id, access)
        return found[0] if found else None

    def readable(self, document_id: str, access: Access) -> tuple[DocumentInfo, list[Chunk]]:
        """The document and its chunks, or NotFoundError: the same answer whether it is missing
        or `access` may not read it, so a key cannot probe for documents it may not see."""
        found = self._found(document_id, access)
        if found is None:
            raise NotFoundError(f"no document '{document_id}' in collection '{self.name}'")
        return found

    def _found(self, document_id: str, access: Access) -> tuple[DocumentInfo, list[Chunk]] | None:
        """One document of the keyword snapshot, with its chunks, if `access` may read it now."""
        chunks = [c for c in self.keyword.current().chunks if c.document_id == document_id]
        if not chunks:
            return None
        found = self._readable([DocumentInfo.of(chunks)], access, {document_id: chunks})
        return (found[0], chunks) if found else None

    def _readable(
        self, docs: list[DocumentInfo], access: Access, chunks: dict[str, list[Chunk]]
    ) -> list[DocumentInfo]:
        """`docs` that the store still holds and `access` may read, with their current stamps.
        A document's chunks share one stamp, so one chunk each tells (one store read in all)."""
        probe = {chunks[d.document_id][0].chunk_id: d for d in docs}
        stored = self.store.fetch(list(probe))
        return [
            replace(doc, groups=stored[cid].groups)
            for cid, doc in probe.items()
            if cid in stored and access.admits(stored[cid].groups)
        ]


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
                corpus = Corpus(name, store, keyword, retriever, OriginalFiles(store))
                self._open[name] = corpus
        return corpus

    def names(self) -> list[str]:
        """Collections in the store, sorted (not the companions that keep uploaded originals)."""
        names = (c.name for c in self.client.list_collections())
        return sorted(n for n in names if not is_files_collection(n))
