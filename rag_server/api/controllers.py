"""Search and ask: decode, call the service, encode. Docstrings become the OpenAPI text."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Controller, Request, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK

from rag_server.api.deps import DEPENDENCIES, collection_for
from rag_server.api.mapping import answer_response, audit_answer, filters_for, search_result
from rag_server.api.problems import responses
from rag_server.api.schemas import (
    AskRequest,
    AskResponse,
    SearchRequest,
    SearchResponse,
)
from rag_server.api.streaming import STREAM_NOTE, EventStream, answer_events
from rag_server.audit import Auditor
from rag_server.auth import ApiKey
from rag_server.rag import Rag


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
        return SearchResponse([search_result(h) for h in hits], timings)

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
                events = answer_events(rag.service, data, filters, collection, record, place)
                owned.pop_all()
            return EventStream(events, place)
        with auditor.record("ask", key.id, collection, data.question) as entry:
            answer = await rag.service.ask(data.question, filters, data.top_k, collection)
            audit_answer(entry, answer)
        return answer_response(answer)
