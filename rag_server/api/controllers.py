"""Thin controllers: decode, call the service, encode. Docstrings become the OpenAPI text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK

from rag_server.api.problems import problem_body
from rag_server.api.schemas import (
    AskRequest,
    AskResponse,
    CitationOut,
    FiltersIn,
    Health,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SourceOut,
    Usage,
)
from rag_server.errors import RagError, StoreUnavailableError
from rag_server.grounding import Quote
from rag_server.rag import Rag
from rag_server.retrieval import Filters
from rag_server.service import Answer, RagService
from rag_server.store import Hit


class EventStream(ServerSentEvent):
    """Server-sent events whose content type survives a handler that also returns JSON.

    Litestar passes the handler's (JSON) media type down and lets it win over the response's own,
    contrary to its docstring; pin ours."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = "text/event-stream"
        return super().to_asgi_response(*args, **kwargs)


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
    return SearchResult(**_passage(hit), text=hit.chunk.text)


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
        """Retrieval only (dense + keyword, fused, filtered): the best chunks first. No model call."""
        timings: dict[str, float] = {}
        hits = await service.search(data.query, data.top_k, _filters(data.filters), timings)
        return SearchResponse([_result(h) for h in hits], timings)

    @post("/ask", status_code=HTTP_200_OK)
    async def ask(
        self, data: AskRequest, service: RagService, request: Request[Any, Any, Any]
    ) -> AskResponse | EventStream:
        """Answer from the ingested documents. Every sentence is verified against the cited sources;
        `status` is `answered`, `extractive` (a verbatim quote) or `insufficient_evidence` (a refusal,
        with the nearest passages under `related`).

        With `"stream": true` (or `Accept: text/event-stream`) the reply is server-sent events:
        `sources`, then `token` events (the model's raw, unverified text), then one `final` event
        with the verified response, which is what clients should render."""
        filters = _filters(data.filters)
        if data.stream or "text/event-stream" in request.headers.get("accept", ""):
            service.gate.check()
            return EventStream(_events(service, data, filters))
        return _response(await service.ask(data.question, data.top_k, filters))


async def _events(
    service: RagService, data: AskRequest, filters: Filters | None
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        async for kind, payload in service.ask_stream(data.question, data.top_k, filters):
            if kind == "sources":
                body: Any = [_source(n, hit) for n, hit in enumerate(payload, start=1)]
            elif kind == "token":
                body = {"text": payload}
            else:
                body = _response(payload)
            yield ServerSentEventMessage(event=kind, data=msgspec.json.encode(body).decode())
    except RagError as exc:
        problem = problem_body(exc.status, exc.title, exc.detail)
        yield ServerSentEventMessage(event="error", data=json.dumps(problem))


def _response(answer: Answer) -> AskResponse:
    return AskResponse(
        answer=answer.answer,
        status=answer.status,
        citations=[_citation(q) for q in answer.citations],
        related=[_citation(q) for q in answer.related],
        removed_sentences=answer.removed_sentences,
        model=answer.model,
        usage=Usage(answer.prompt_tokens, answer.completion_tokens),
        timings_ms=answer.timings_ms,
    )


def _source(n: int, hit: Hit) -> SourceOut:
    return SourceOut(**_passage(hit), n=n)


def _filters(data: FiltersIn | None) -> Filters | None:
    if data is None:
        return None
    return Filters(tuple(data.document_id or ()), data.source_prefix, dict(data.metadata or {}))


class _Passage(TypedDict):
    document_id: str
    source: str
    title: str
    page: int | None
    section: str | None
    chunk_id: str
    score: float


def _passage(hit: Hit) -> _Passage:
    """The PassageOut fields of a hit (score rounded: four places is all a reader needs)."""
    c = hit.chunk
    return {
        "document_id": c.document_id,
        "source": c.source,
        "title": c.title,
        "page": c.page,
        "section": c.section,
        "chunk_id": c.chunk_id,
        "score": round(hit.score, 4),
    }


def _citation(quote: Quote) -> CitationOut:
    return CitationOut(
        **_passage(quote.hit), n=quote.n, quote=quote.text, start=quote.start, end=quote.end
    )
