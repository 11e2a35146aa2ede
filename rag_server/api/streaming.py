"""Server-sent events: the stream response that holds a queue place until it ends, and the
events of an answer as the service produces them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import msgspec
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import ASGIApp, Receive, Scope, Send

from rag_core.errors import RagError
from rag_server.api.mapping import answer_response, audit_answer, source_out
from rag_server.api.problems import problem_body
from rag_server.api.schemas import AskRequest
from rag_server.audit import AuditEntry
from rag_server.generation import Place
from rag_server.retrieval import Filters
from rag_server.service import RagService


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
        self.answer_events = content
        self._place = place

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = "text/event-stream"
        return _Ending(super().to_asgi_response(*args, **kwargs), self._end)

    async def _end(self) -> None:
        try:
            if isinstance(self.answer_events, AsyncGenerator):
                with anyio.CancelScope(shield=True):  # a server shutting down must not skip this
                    await self.answer_events.aclose()
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


async def answer_events(
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
                        body: Any = [source_out(n, hit) for n, hit in enumerate(payload, start=1)]
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
