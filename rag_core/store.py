"""The Chroma collection of chunks: record schema, writes, reads. Shared by ingest and serve."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import httpx
import numpy as np

from rag_core.embedding import EmbedderIdentity
from rag_core.errors import CollectionNotFoundError, EmbedderMismatchError, StoreUnavailableError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from rag_core.settings import Settings

log = logging.getLogger(__name__)

_META_MODEL = "embed_model"
_META_DIM = "embed_dim"
_META_VARIANT = "embed_variant"  # torch, onnx, onnx-int8...: recorded, mismatch only warns
_META_FINGERPRINT = "embed_fingerprint"  # sha256 of the model files: a mismatch refuses
# Bumped by every write, so readers know when to rebuild derived indexes (the keyword index).
_META_REVISION = "revision"
_PAGE = 1000  # rows per read when scanning the whole collection
# Document-level access, stamped on every chunk: Chroma metadata holds scalars only, so a group
# becomes a boolean key (`acl_g_hr`) that a `where` clause can test, plus a public flag.
ACL_PUBLIC = "acl_public"
ACL_GROUP_PREFIX = "acl_g_"
log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reachable(call: Callable[_P, _R]) -> Callable[_P, _R]:
    """A Chroma server that cannot be reached is a 503 (StoreUnavailableError), not a 500."""

    @functools.wraps(call)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return call(*args, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"vector store not reachable: {exc}") from exc

    return wrapper


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
    groups: tuple[str, ...] = ()  # empty: public to every key of the collection

    def metadata(self, revoked: Iterable[str] = ()) -> dict[str, str | int | bool]:
        """Chroma metadata: scalar values only, and no None (Chroma rejects it). Chroma merges
        metadata on upsert, so groups a document loses (`revoked`) are written as False."""
        meta: dict[str, str | int | bool] = {
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
        meta[ACL_PUBLIC] = not self.groups
        meta["groups"] = ",".join(self.groups)
        meta.update({ACL_GROUP_PREFIX + g: False for g in revoked})
        meta.update({ACL_GROUP_PREFIX + g: True for g in self.groups})
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
            groups=tuple(g for g in str(meta.get("groups", "")).split(",") if g),
        )


@dataclass
class DocumentState:
    """What the store holds of one document: enough to decide whether to re-ingest it."""

    chunk_ids: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    pipelines: set[str] = field(default_factory=set)
    chunk_counts: set[int] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)

    def is_complete(self, content_hash: str, pipeline: str, groups: tuple[str, ...] = ()) -> bool:
        """True when every chunk of exactly this content, pipeline and access stamp is present, and
        nothing else. A crash mid-write leaves a mix of hashes or fewer chunks than chunk_count."""
        return (
            self.hashes == {content_hash}
            and self.pipelines == {pipeline}
            and self.chunk_counts == {len(self.chunk_ids)}
            and self.groups == {",".join(groups)}
        )


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float


def _precision(variant: str) -> str:
    """torch, onnx and openvino in fp32 give the same vectors; only quantization changes them."""
    return variant.partition("-")[2] or "fp32"


def open_client(settings: Settings) -> ClientAPI:
    """A Chroma client with telemetry off: embedded under the data dir, or a Chroma server (http).

    A server that is not up yet is waited for (RAG_STORE__CONNECT_WAIT_S), so an API pod started
    before Chroma becomes ready instead of crash-looping.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    s = settings.store
    if s.mode == "embedded":
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(settings.chroma_dir), settings=chroma, tenant=s.tenant, database=s.database
        )
    deadline = time.monotonic() + s.connect_wait_s
    while True:
        try:
            client = chromadb.HttpClient(
                host=s.host, port=s.port, ssl=s.ssl, headers=s.headers or None, settings=chroma,
                tenant=s.tenant, database=s.database,
            )  # fmt: skip
            _bound_calls(client, s.timeout_s)
            return client
        except (ValueError, httpx.TransportError) as exc:  # chromadb says ValueError when down
            if time.monotonic() >= deadline:
                raise StoreUnavailableError(
                    f"Chroma server {s.host}:{s.port} not reachable (RAG_STORE__HOST, "
                    f"RAG_STORE__PORT): {exc}"
                ) from exc
            log.warning("waiting for the Chroma server at %s:%d: %s", s.host, s.port, exc)
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def _bound_calls(client: ClientAPI, timeout_s: float) -> None:
    """chromadb's HTTP client waits forever (timeout=None) and offers no setting for it; bound
    each call on its httpx session, so a hung server turns into a 503 instead of a hung request."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        raise StoreUnavailableError(
            "cannot bound calls to the Chroma server: chromadb's HTTP client changed shape"
        )
    session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))


def reopen_embedded(settings: Settings) -> Callable[[], ClientAPI] | None:
    """For an embedded store, how to get a client that sees other processes' writes.

    An embedded Chroma client keeps its vector index in memory: rows another process (rag-ingest)
    wrote or deleted are missed by its queries until the store is opened afresh. A Chroma server
    has one index, so http mode needs nothing.
    """
    if settings.store.mode != "embedded":
        return None

    def reopen() -> ClientAPI:
        from chromadb.api.shared_system_client import SharedSystemClient

        # Chroma shares one system per path within a process; drop it so the next client loads
        # the index from disk. Clients already handed out keep working on their own system.
        SharedSystemClient.clear_system_cache()
        return open_client(settings)

    return reopen


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
        self._seen_revision: int | None = None
        self._unfingerprinted = False  # a store from before fingerprints, until its next write
        self.collection: Collection = self._open_collection(create)
        self.max_batch = max(1, int(client.get_max_batch_size()))

    @_reachable
    def _open_collection(self, create: bool = True) -> Collection:
        if not create:
            from chromadb.errors import NotFoundError

            try:
                self.client.get_collection(self.name, embedding_function=None)
            except NotFoundError:
                raise CollectionNotFoundError(f"no collection named '{self.name}'") from None
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
        before = self._unfingerprinted  # warn once, not at every reopen
        self._unfingerprinted = not (collection.metadata or {}).get(_META_FINGERPRINT)
        if self._unfingerprinted and not before and self.identity.fingerprint:
            log.warning(
                "collection '%s' does not record which model files built it (it predates "
                "fingerprints); accepted on the name and dimension of %s, and bound to these "
                "model files at its next write",
                self.name,
                self.identity.name,
            )
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
        meta: dict[str, str | int] = {
            _META_MODEL: self.identity.name,
            _META_DIM: self.identity.dim,
            _META_VARIANT: self.identity.variant,
        }
        if self.identity.fingerprint:
            meta[_META_FINGERPRINT] = self.identity.fingerprint
        return meta

    def _check_identity(self, collection: Collection) -> None:
        """Refuse a collection another model built: another name or size, or (where both sides
        know theirs) other model files under the same name."""
        meta = collection.metadata or {}
        stored = EmbedderIdentity(
            str(meta.get(_META_MODEL, "")),
            int(meta.get(_META_DIM, 0) or 0),
            fingerprint=str(meta.get(_META_FINGERPRINT, "") or ""),
        )
        if stored != self.identity:
            raise EmbedderMismatchError(
                f"collection '{self.name}' was built with embedder {stored.describe()}, but the "
                f"configured embedder is {self.identity.describe()}; use the original embedder "
                "(RAG_EMBEDDER__NAME / RAG_EMBEDDER__MODEL_PATH) or another collection"
            )
        built, configured = stored.fingerprint, self.identity.fingerprint
        if built and configured and built != configured:
            raise EmbedderMismatchError(
                f"collection '{self.name}' was built with embedder {stored.describe()} from model "
                f"files sha256 {built[:12]}, but the configured embedder {self.identity.describe()}"
                f" has model files sha256 {configured[:12]}: another model under the same name; "
                "use the model that built it (RAG_EMBEDDER__MODEL_PATH) or another collection"
            )

    def _bind_fingerprint(self) -> None:
        """A store from before fingerprints is bound to the model files of its first writer
        since: from then on its vectors are (in part) this model's, and any other is refused."""
        if not self._unfingerprinted or not self.identity.fingerprint:
            return
        meta = dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})
        if not meta.get(_META_FINGERPRINT):
            meta[_META_FINGERPRINT] = self.identity.fingerprint
            self.collection.modify(metadata=meta)
        else:  # another writer bound it meanwhile: it must be ours
            self._check_identity(self.client.get_collection(self.name, embedding_function=None))
        self._unfingerprinted = False

    def check(self) -> None:
        """Readiness: the store answers and the collection still belongs to our embedder."""
        try:
            self.client.heartbeat()
            collection = self.client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            raise StoreUnavailableError(f"vector store not reachable: {exc}") from exc
        self._check_identity(collection)

    @_reachable
    def count(self) -> int:
        return int(self.collection.count())

    @_reachable
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

    @_reachable
    def delete_ids(self, ids: Sequence[str]) -> None:
        for lo in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=list(ids[lo : lo + self.max_batch]))

    @_reachable
    def delete_document(self, document_id: str) -> int:
        """Remove every chunk of one document; the number removed (0: there was no such document)."""
        ids = self.collection.get(where={"document_id": document_id}, include=[])["ids"]
        if ids:
            self.bump_revision()
            self.delete_ids(ids)
            self.bump_revision()
        return len(ids)

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

    @_reachable
    def all_chunks(self) -> list[Chunk]:
        return [
            Chunk.from_record(cid, text, meta) for cid, meta, text in self._scan(documents=True)
        ]

    @_reachable
    def revision(self) -> int:
        """The collection's write counter, read fresh (another process may have written)."""
        collection = self.client.get_collection(self.name, embedding_function=None)
        return int((collection.metadata or {}).get(_META_REVISION, 0))

    def refresh(self) -> int:
        """The current revision; when another process moved it, reopen an embedded store first,
        so dense queries see the same rows as the keyword index rebuilt from this revision."""
        revision = self.revision()
        if self._reopen is not None and self._seen_revision not in (None, revision):
            self.client = self._reopen()
            self.collection = self._open_collection()
        self._seen_revision = revision
        return revision

    @_reachable
    def bump_revision(self) -> None:
        meta = dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})
        meta[_META_REVISION] = int(meta.get(_META_REVISION, 0)) + 1
        self.collection.modify(metadata=meta)

    @_reachable
    def document_states(self) -> dict[str, DocumentState]:
        """Every document in the collection, from chunk metadata alone (the store is the truth)."""
        states: dict[str, DocumentState] = {}
        for chunk_id, meta, _ in self._scan():
            state = states.setdefault(str(meta["document_id"]), DocumentState())
            state.chunk_ids.add(chunk_id)
            state.hashes.add(str(meta.get("content_hash")))
            state.pipelines.add(str(meta.get("pipeline")))
            state.chunk_counts.add(int(meta.get("chunk_count", -1)))
            state.groups.add(str(meta.get("groups", "")))
        return states

    @_reachable
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

    @_reachable
    def fetch(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """The given chunks as stored now (text, metadata, access stamps); ids no longer stored
        are absent. Readers of a derived index re-check what it returns against these."""
        chunks, _ = self._get(ids, vectors=False)
        return {c.chunk_id: c for c in chunks}

    @_reachable
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
        metas = got["metadatas"] or []
        chunks = [
            Chunk.from_record(cid, text, meta)
            for cid, text, meta in zip(got["ids"], texts, metas, strict=True)
        ]
        return chunks, got["embeddings"] if vectors else None
