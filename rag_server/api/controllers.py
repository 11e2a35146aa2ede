"""Thin controllers: decode, call the service, encode. Docstrings become the OpenAPI text."""

from __future__ import annotations

import anyio
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.status_codes import HTTP_200_OK

from rag_server.api.schemas import (
    AskRequest,
    AskResponse,
    CitationOut,
    Health,
    SearchRequest,
    SearchResponse,
    SearchResult,
    Usage,
)
from rag_server.errors import RagError, StoreUnavailableError
from rag_server.rag import Rag
from rag_server.service import RagService
from rag_server.store import Hit


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


def _result(hit: Hit) -> SearchResult:
    c = hit.chunk
    return SearchResult(
        c.chunk_id, c.document_id, c.source, c.title, c.page, c.section, c.text, round(hit.score, 4)
    )


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> Health:
        """Liveness: the process is up. Checks nothing else, so a slow dependency never restarts it."""
        return Health("ok")

    @get("/readyz", status_code=HTTP_200_OK)
    async def readyz(self, state: State) -> Response[Health]:
        """Readiness: models loaded, the store reachable, and the collection built by our embedder."""
        rag = provide_rag(state)
        try:
            checks = await anyio.to_thread.run_sync(rag.readiness)
        except RagError as exc:
            raise StoreUnavailableError(exc.detail) from exc
        return Response(Health("ready", checks))


class QueryController(Controller):
    path = "/v1"
    tags = ["query"]
    dependencies = {
        "rag": Provide(provide_rag, sync_to_thread=False),
        "service": Provide(provide_service, sync_to_thread=False),
    }

    @post("/search", status_code=HTTP_200_OK)
    async def search(self, data: SearchRequest, service: RagService) -> SearchResponse:
        """Retrieval only: the chunks nearest the query, best first. No model call."""
        hits = await service.search(data.query, data.top_k)
        return SearchResponse([_result(h) for h in hits])

    @post("/ask", status_code=HTTP_200_OK)
    async def ask(self, data: AskRequest, service: RagService) -> AskResponse:
        """Answer a question from the ingested documents with the local model, citing its sources."""
        answer = await service.ask(data.question, data.top_k)
        citations = [
            CitationOut(
                n=c.n,
                document_id=c.hit.chunk.document_id,
                source=c.hit.chunk.source,
                title=c.hit.chunk.title,
                page=c.hit.chunk.page,
                section=c.hit.chunk.section,
                chunk_id=c.hit.chunk.chunk_id,
                quote=c.hit.chunk.text,
                start=c.hit.chunk.start,
                end=c.hit.chunk.end,
                score=round(c.hit.score, 4),
            )
            for c in answer.citations
        ]
        return AskResponse(
            answer=answer.answer,
            status=answer.status,
            citations=citations,
            model=answer.model,
            usage=Usage(answer.prompt_tokens, answer.completion_tokens),
            timings_ms=answer.timings_ms,
        )
