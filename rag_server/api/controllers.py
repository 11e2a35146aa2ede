"""Thin controllers: decode, call the service, encode. Docstrings become the OpenAPI text."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypedDict

import anyio
import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK
from litestar.types import ASGIApp, Receive, Scope, Send

from rag_core.errors import RagError
from rag_core.settings import validate_collection_name
from rag_core.store import Hit
from rag_server.api.problems import problem_body, responses
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
from rag_server.api.security import caller, check_collection
from rag_server.audit import AuditEntry, Auditor
from rag_server.auth import ApiKey, KeyRing
from rag_server.generation import Place
from rag_server.grounding import Quote
from rag_server.rag import Rag
from rag_server.retrieval import Filters
from rag_server.service import Answer, RagService


class EventStream(ServerSentEvent):
    """Server-sent events whose content type survives a handler that also returns JSON, and
    that end what they hold (the generation queue `place`, the event generator) when the response
    ends: sent, failed, or cut short by a client that went away.

    Litestar passes the handler's (JSON) media type down and lets it win over the response's own,
    contrary to its docstring; pin ours. On a disconnect it cancels the sending task and leaves
    the event generator suspended until the garbage collector finds it; close it ourselves, so
    the generation stops at its next token and the place is free for the next request now."""

    def __init__(
        self, content: AsyncIterator[ServerSentEventMessage], place: Place | None = None
    ) -> None:
        super().__init__(content)
        self._events = content
        self._place = place

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = "text/event-stream"
        return _Ending(super().to_asgi_response(*args, **kwargs), self._end)

    async def _end(self) -> None:
        try:
            if isinstance(self._events, AsyncGenerator):
                with anyio.CancelScope(shield=True):  # a server shutting down must not skip this
                    await self._events.aclose()
        finally:
            if self._place is not None:
                self._place.release()


class _Ending:
    """An ASGI response, then `end` however the response finished."""

    def __init__(self, response: ASGIApp, end: Callable[[], Awaitable[None]]) -> None:
        self.response = response
        self.end = end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            await self.end()


# The success body is JSON, or server-sent events when asked to stream. Declared explicitly: the
# union return type would otherwise become a schema that any body matches.
STREAM_NOTE = (
    "The response as JSON; with `stream: true` (or Accept: text/event-stream), server-sent "
    "events instead, whose {final} carries this object."
)


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


def collection_for(key: ApiKey, requested: str | None, rag: Rag) -> str:
    """The collection a request works on (default: the configured one), if the key may use it."""
    name = requested or rag.settings.collection
    try:
        validate_collection_name(name)
    except ValueError as exc:
        raise ValidationException(f"collection: {exc}") from None
    check_collection(key, name)
    return name


DEPENDENCIES = {
    "rag": Provide(provide_rag, sync_to_thread=False),
    "service": Provide(provide_service, sync_to_thread=False),
    "key": Provide(provide_key, sync_to_thread=False),
    "auditor": Provide(provide_auditor, sync_to_thread=False),
}


def _result(hit: Hit) -> SearchResult:
    return SearchResult(**_passage(hit), text=hit.chunk.text)


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", sync_to_thread=False, responses=responses())
    def healthz(self) -> Health:
        """Liveness: the process is up. Checks nothing else, so a slow dependency never restarts it."""
        return Health("ok")

    @get("/readyz", status_code=HTTP_200_OK, responses=responses(503))
    async def readyz(self, state: State) -> Response[Health]:
        """Readiness: models loaded, the store reachable, and the collection built by our embedder.
        `api_keys` reports a keys file that could not be read after a change; the last good keys
        still serve, so it does not make the replica unready (every replica would read the same
        file, and taking them all out of service would be an outage)."""
        rag = provide_rag(state)
        try:
            checks = await anyio.to_thread.run_sync(rag.readiness)
        except RagError as exc:  # whichever dependency failed, the detail names it
            raise NotReadyError(exc.detail) from exc
        keyring: KeyRing = state.keyring
        return Response(Health("ready", {**checks, "api_keys": keyring.describe()}))


class MetricsController(Controller):
    tags = ["observability"]

    @get("/metrics", media_type=MediaType.TEXT, responses=responses(), sync_to_thread=False)
    def metrics(self) -> Response[bytes]:
        """Prometheus text format (any valid key): requests, latencies, answers by status, queue,
        tokens per second."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class QueryController(Controller):
    path = "/v1"
    tags = ["query"]
    dependencies = DEPENDENCIES

    @post("/search", status_code=HTTP_200_OK, responses=responses(403, 404, 409, 503))
    async def search(
        self, data: SearchRequest, rag: Rag, key: ApiKey, auditor: Auditor
    ) -> SearchResponse:
        """Retrieval only (dense + keyword, fused, filtered): the best chunks first. No model call.
        Only documents the API key may read take part."""
        collection = collection_for(key, data.collection, rag)
        with auditor.record("search", key.id, collection, data.query) as entry:
            filters = filters_for(data.filters, key)
            timings: dict[str, float] = {}
            hits = await rag.service.search(data.query, data.top_k, filters, collection, timings)
            entry.documents = [h.chunk.document_id for h in hits]
        return SearchResponse([_result(h) for h in hits], timings)

    @post(
        "/ask",
        status_code=HTTP_200_OK,
        responses=responses(403, 404, 409, 503)
        | {200: ResponseSpec(AskResponse, description=STREAM_NOTE.format(final="`final` event"))},
    )
    async def ask(
        self,
        data: AskRequest,
        rag: Rag,
        key: ApiKey,
        auditor: Auditor,
        request: Request[Any, Any, Any],
    ) -> AskResponse | EventStream:
        """Answer from the ingested documents. Every sentence is verified against the cited sources;
        `status` is `answered`, `extractive` (a verbatim quote) or `insufficient_evidence` (a refusal,
        with the nearest passages under `related`).

        With `"stream": true` (or `Accept: text/event-stream`) the reply is server-sent events:
        `sources`, then `token` events (the model's raw, unverified text), then one `final` event
        with the verified response, which is what clients should render."""
        collection = collection_for(key, data.collection, rag)
        filters = filters_for(data.filters, key)
        if data.stream or "text/event-stream" in request.headers.get("accept", ""):
            await rag.service.corpus(collection)  # a missing collection is a 404, not a stream
            # A place in the queue from now, or 503 + Retry-After before any byte of a 200: once
            # the stream has started, no later request can push it out into an error event. The
            # response owns the place from here and gives it back when it ends.
            with contextlib.ExitStack() as owned:
                place = owned.enter_context(rag.service.gate.admit())
                record = auditor.record("ask", key.id, collection, data.question)
                events = _events(rag.service, data, filters, collection, record, place)
                owned.pop_all()
            return EventStream(events, place)
        with auditor.record("ask", key.id, collection, data.question) as entry:
            answer = await rag.service.ask(data.question, filters, data.top_k, collection)
            audit_answer(entry, answer)
        return answer_response(answer)


def audit_answer(entry: AuditEntry, answer: Answer) -> None:
    entry.status = answer.status
    entry.documents = [q.hit.chunk.document_id for q in answer.citations + answer.related]


async def _events(
    service: RagService,
    data: AskRequest,
    filters: Filters,
    collection: str,
    record: contextlib.AbstractContextManager[AuditEntry],
    place: Place,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    with record as entry:
        try:
            stream = service.ask_stream(data.question, filters, data.top_k, collection, place)
            async with contextlib.aclosing(stream):  # closed with this generator, not by the GC
                async for kind, payload in stream:
                    if kind == "sources":
                        body: Any = [_source(n, hit) for n, hit in enumerate(payload, start=1)]
                    elif kind == "token":
                        body = {"text": payload}
                    else:
                        audit_answer(entry, payload)
                        body = answer_response(payload)
                    encoded = msgspec.json.encode(body).decode()
                    yield ServerSentEventMessage(event=kind, data=encoded)
        except RagError as exc:
            entry.status = f"error {exc.status}"
            problem = problem_body(exc.status, exc.title, exc.detail)
            yield ServerSentEventMessage(event="error", data=json.dumps(problem))


def answer_response(answer: Answer) -> AskResponse:
    return AskResponse(
        answer=answer.answer,
        status=answer.status,
        citations=[citation_out(q) for q in answer.citations],
        related=[citation_out(q) for q in answer.related],
        removed_sentences=answer.removed_sentences,
        model=answer.model,
        usage=Usage(answer.prompt_tokens, answer.completion_tokens),
        timings_ms=answer.timings_ms,
        finish_reason=answer.finish_reason,
    )


def _source(n: int, hit: Hit) -> SourceOut:
    return SourceOut(**_passage(hit), n=n)


def filters_for(data: FiltersIn | None, key: ApiKey) -> Filters:
    """The request's filters, always narrowed to the documents the key may read."""
    if data is None:
        return Filters(access=key.access)
    return Filters(
        tuple(data.document_id or ()),
        data.source_prefix,
        dict(data.metadata or {}),
        access=key.access,
    )


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


def citation_out(quote: Quote) -> CitationOut:
    return CitationOut(
        **_passage(quote.hit), n=quote.n, quote=quote.text, start=quote.start, end=quote.end
    )
