"""Dependency providers every controller shares: the loaded Rag, its service, the caller's key,
the auditor, and the collection a request may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from rag_core.errors import RagError
from rag_core.settings import COLLECTION_MAX, validate_collection_name
from rag_core.store import Chunk
from rag_server.api.schemas import COLLECTION_PATTERN
from rag_server.api.security import caller, check_collection
from rag_server.audit import Auditor
from rag_server.auth import ApiKey
from rag_server.catalog import Corpus, DocumentInfo
from rag_server.rag import Rag
from rag_server.service import RagService


class NotReadyError(RagError):
    status = 503
    title = "Service not ready"
    retry_after = 5


def provide_rag(state: State) -> Rag:
    rag: Rag | None = state.get("rag")
    if rag is None:
        raise NotReadyError("models are still loading")
    return rag


def provide_service(rag: Rag) -> RagService:
    return rag.service


def provide_key(request: Request[Any, Any, Any]) -> ApiKey:
    return caller(request)


def provide_auditor(state: State) -> Auditor:
    auditor: Auditor = state.auditor
    return auditor


# `?collection=` on the routes that read one document or the list.
CollectionParam = Annotated[
    str | None,
    Parameter(
        query="collection", min_length=3, max_length=COLLECTION_MAX, pattern=COLLECTION_PATTERN
    ),
]


def collection_for(key: ApiKey, requested: str | None, rag: Rag) -> str:
    """The collection a request works on (default: the configured one), if the key may use it."""
    name = requested or rag.settings.collection
    try:
        validate_collection_name(name)
    except ValueError as exc:
        raise ValidationException(f"collection: {exc}") from None
    check_collection(key, name)
    return name


@dataclass(frozen=True)
class Readable:
    """One document a key may read: its collection, id, record and chunks."""

    corpus: Corpus
    document_id: str
    document: DocumentInfo
    chunks: list[Chunk]


async def readable(rag: Rag, key: ApiKey, collection: str | None, document_id: str) -> Readable:
    """The document a route names, in the collection the request asks for, if the key may read
    it: NotFoundError whether it is missing or not the caller's, as `Corpus.readable` answers.
    Every route that reads one document starts here, so none checks access its own way."""
    corpus = await rag.service.corpus(collection_for(key, collection, rag))
    doc_id = document_id.lstrip("/")  # a {path:} parameter keeps its leading slash
    document, chunks = await anyio.to_thread.run_sync(corpus.readable, doc_id, key.access)
    return Readable(corpus, doc_id, document, chunks)


DEPENDENCIES = {
    "rag": Provide(provide_rag, sync_to_thread=False),
    "service": Provide(provide_service, sync_to_thread=False),
    "key": Provide(provide_key, sync_to_thread=False),
    "auditor": Provide(provide_auditor, sync_to_thread=False),
}
