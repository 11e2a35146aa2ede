"""The Chroma collection of chunks: record schema, writes, reads. Shared by ingest and serve."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_server.embedding import EmbedderIdentity
from rag_server.errors import EmbedderMismatchError, StoreUnavailableError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from rag_server.settings import Settings

log = logging.getLogger(__name__)

_META_MODEL = "embed_model"
_META_DIM = "embed_dim"
_META_VARIANT = "embed_variant"  # torch, onnx, onnx-int8...: recorded, mismatch only warns
# Bumped by every write, so readers know when to rebuild derived indexes (the keyword index).
_META_REVISION = "revision"
_PAGE = 1000  # rows per read when scanning the whole collection


@dataclass(frozen=True)
class Chunk:
    """One stored passage and everything needed to cite it."""

    chunk_id: str
    document_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    chunk_index: int
    chunk_count: int
    content_hash: str
    pipeline: str
    ingested_at: str
    page: int | None = None
    section: str | None = None

    def metadata(self) -> dict[str, str | int]:
        """Chroma metadata: scalar values only, and no None (Chroma rejects it)."""
        meta: dict[str, str | int] = {
            "document_id": self.document_id,
            "source": self.source,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "chunk_index": self.chunk_index,
            "chunk_count": self.chunk_count,
            "content_hash": self.content_hash,
            "pipeline": self.pipeline,
            "ingested_at": self.ingested_at,
        }
        if self.page is not None:
            meta["page"] = self.page
        if self.section is not None:
            meta["section"] = self.section
        return meta

    @classmethod
    def from_record(cls, chunk_id: str, text: str, meta: Mapping[str, Any]) -> Chunk:
        page = meta.get("page")
        section = meta.get("section")
        return cls(
            chunk_id=chunk_id,
            document_id=str(meta["document_id"]),
            source=str(meta["source"]),
            title=str(meta.get("title", "")),
            text=text,
            start=int(meta["start"]),
            end=int(meta["end"]),
            chunk_index=int(meta["chunk_index"]),
            chunk_count=int(meta["chunk_count"]),
            content_hash=str(meta["content_hash"]),
            pipeline=str(meta["pipeline"]),
            ingested_at=str(meta["ingested_at"]),
            page=int(page) if page is not None else None,
            section=str(section) if section is not None else None,
        )


@dataclass
class DocumentState:
    """What the store holds of one document: enough to decide whether to re-ingest it."""

    chunk_ids: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    pipelines: set[str] = field(default_factory=set)
    chunk_counts: set[int] = field(default_factory=set)

    def is_complete(self, content_hash: str, pipeline: str) -> bool:
        """True when every chunk of exactly this content and pipeline is present, and nothing else.

        A crash mid-write leaves a mix of hashes or fewer chunks than chunk_count, which fails this.
        """
        return (
            self.hashes == {content_hash}
            and self.pipelines == {pipeline}
            and self.chunk_counts == {len(self.chunk_ids)}
        )


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float


def _precision(variant: str) -> str:
    """torch, onnx and openvino in fp32 give the same vectors; only quantization changes them."""
    return variant.partition("-")[2] or "fp32"


def open_client(settings: Settings) -> ClientAPI:
    """An embedded Chroma client under the data dir, with telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(settings.chroma_dir),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
    )


class ChunkStore:
    """One collection, bound to the embedder that built it."""

    def __init__(self, client: ClientAPI, name: str, identity: EmbedderIdentity) -> None:
        self.client = client
        self.name = name
        self.identity = identity
        self.collection: Collection = self._open_collection()
        self.max_batch = max(1, int(client.get_max_batch_size()))

    def _open_collection(self) -> Collection:
        collection = self.client.get_or_create_collection(
            self.name,
            metadata=self._identity_metadata(),
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,  # never Chroma's default: it would download a model
        )
        if not (collection.metadata or {}).get(_META_MODEL) and collection.count() == 0:
            # An empty collection made elsewhere (e.g. by hand): claim it for our embedder.
            collection.modify(metadata=self._identity_metadata())
        self._check_identity(collection)
        stored = str((collection.metadata or {}).get(_META_VARIANT, "torch"))
        if _precision(stored) != _precision(self.identity.variant):
            log.warning(
                "collection '%s' was embedded with the %s variant of %s and is queried with the "
                "%s variant: same model, vectors differ slightly (see bench/results/embedder.md)",
                self.name,
                stored,
                self.identity.name,
                self.identity.variant,
            )
        return collection

    def _identity_metadata(self) -> dict[str, str | int]:
        return {
            _META_MODEL: self.identity.name,
            _META_DIM: self.identity.dim,
            _META_VARIANT: self.identity.variant,
        }

    def _check_identity(self, collection: Collection) -> None:
        meta = collection.metadata or {}
        stored = EmbedderIdentity(str(meta.get(_META_MODEL, "")), int(meta.get(_META_DIM, 0) or 0))
        if stored != self.identity:
            raise EmbedderMismatchError(
                f"collection '{self.name}' was built with embedder {stored.describe()}, but the "
                f"configured embedder is {self.identity.describe()}; use the original embedder "
                "(RAG_EMBEDDER__NAME / RAG_EMBEDDER__MODEL_PATH) or another collection"
            )

    def check(self) -> None:
        """Readiness: the store answers and the collection still belongs to our embedder."""
        try:
            self.client.heartbeat()
            collection = self.client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            raise StoreUnavailableError(f"vector store not reachable: {exc}") from exc
        self._check_identity(collection)

    def count(self) -> int:
        return int(self.collection.count())

    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Idempotent writes in the largest batches Chroma accepts."""
        for lo in range(0, len(chunks), self.max_batch):
            part = chunks[lo : lo + self.max_batch]
            self.collection.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=embeddings[lo : lo + self.max_batch],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],  # type: ignore[misc]
            )

    def delete_ids(self, ids: Sequence[str]) -> None:
        for lo in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=list(ids[lo : lo + self.max_batch]))

    def _scan(self, documents: bool = False) -> Iterator[tuple[str, Mapping[str, Any], str]]:
        """Every record, a page at a time: (id, metadata, text or "")."""
        include: list[Any] = ["metadatas", "documents"] if documents else ["metadatas"]
        offset = 0
        while True:
            page = self.collection.get(include=include, limit=_PAGE, offset=offset)
            ids, metas = page["ids"], page["metadatas"] or []
            texts = page["documents"] or [""] * len(ids)
            yield from zip(ids, metas, texts, strict=True)
            if len(ids) < _PAGE:
                return
            offset += len(ids)

    def all_chunks(self) -> list[Chunk]:
        return [
            Chunk.from_record(cid, text, meta) for cid, meta, text in self._scan(documents=True)
        ]

    def revision(self) -> int:
        """The collection's write counter, read fresh (another process may have written)."""
        collection = self.client.get_collection(self.name, embedding_function=None)
        return int((collection.metadata or {}).get(_META_REVISION, 0))

    def bump_revision(self) -> None:
        meta = dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})
        meta[_META_REVISION] = int(meta.get(_META_REVISION, 0)) + 1
        self.collection.modify(metadata=meta)

    def document_states(self) -> dict[str, DocumentState]:
        """Every document in the collection, from chunk metadata alone (the store is the truth)."""
        states: dict[str, DocumentState] = {}
        for chunk_id, meta, _ in self._scan():
            state = states.setdefault(str(meta["document_id"]), DocumentState())
            state.chunk_ids.add(chunk_id)
            state.hashes.add(str(meta.get("content_hash")))
            state.pipelines.add(str(meta.get("pipeline")))
            state.chunk_counts.add(int(meta.get("chunk_count", -1)))
        return states

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
        ids = result["ids"][0]
        docs = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        dists = (result["distances"] or [[]])[0]
        return [
            Hit(Chunk.from_record(cid, doc, meta), 1.0 - float(dist))
            for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True)
        ]

    def similarities(self, embedding: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        """Cosine of the query with stored chunks (vectors are normalised, so a dot product)."""
        got = self.collection.get(ids=list(ids), include=["embeddings"])  # type: ignore[list-item]
        vectors = got["embeddings"]
        if vectors is None or len(got["ids"]) == 0:
            return {}
        query = np.asarray(embedding, dtype=np.float32)
        return {
            cid: float(np.dot(np.asarray(v, dtype=np.float32), query))
            for cid, v in zip(got["ids"], vectors, strict=True)
        }
