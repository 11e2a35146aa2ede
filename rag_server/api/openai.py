"""OpenAI-compatible chat completions and models, so existing clients work unchanged.

The last user message is answered by the same grounded pipeline as /v1/ask over the collection
named by `model`. Only verified text is ever sent — also when streaming, where the verified
answer is sent in pieces once it is known — and citations travel in the extra `rag` field
(and as [n] markers in the text).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK

from rag_core.errors import CollectionNotFoundError, InvalidInputError
from rag_server.api.deps import DEPENDENCIES, collection_for
from rag_server.api.mapping import audit_answer, citation_out
from rag_server.api.problems import responses
from rag_server.api.schemas import CitationOut
from rag_server.api.streaming import STREAM_NOTE, EventStream
from rag_server.audit import Auditor
from rag_server.auth import ApiKey
from rag_server.grounding import without_images
from rag_server.rag import Rag
from rag_server.retrieval import Filters
from rag_server.service import Answer

Text = str | list[dict[str, Any]] | None


class ChatMessage(msgspec.Struct):
    role: str
    content: Text = None


class ChatRequest(msgspec.Struct):
    """The fields we use; others that OpenAI clients send (temperature, user, ...) are accepted
    and ignored: retrieval, the gate and verification decide what may be said."""

    messages: list[ChatMessage]
    model: str = ""
    stream: bool = False


class RagExtra(msgspec.Struct):
    """Our extension of the OpenAI response: the grounding status and the checkable citations."""

    status: str
    citations: list[CitationOut]
    related: list[CitationOut]
    read_as: str | None = None  # the question as searched for, as in /v1/ask


class AssistantMessage(msgspec.Struct):
    role: str
    content: str


class Choice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str


class ChatUsage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage
    rag: RagExtra


class ModelCard(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(msgspec.Struct):
    object: str
    data: list[ModelCard]


def _text(content: Text) -> str:
    if isinstance(content, str):
        return content
    parts = content or []
    return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


def _question(data: ChatRequest) -> str:
    for message in reversed(data.messages):
        if message.role == "user":
            text = _text(message.content).strip()
            if text:
                if len(text) > 2000:
                    raise InvalidInputError(
                        "messages: the last user message is over 2000 characters"
                    )
                return text
    raise InvalidInputError("messages: no user message with text to answer")


def _extra(answer: Answer) -> RagExtra:
    return RagExtra(
        answer.status,
        [citation_out(q) for q in answer.citations],
        [citation_out(q) for q in answer.related],
        answer.read_as,
    )


CLOSEST = "Closest passages, which do not answer it:"


def content(answer: Answer) -> str:
    """The assistant message a chat client shows. A refusal lists its closest passages after it,
    as the web page and /v1/ask's `related` do: a client that reads `content` alone (the official
    one) showed the bare refusal, though over the suite's seven corpora one of those passages
    quotes the answer for 76% of the answerable questions refused (docs/evaluation.md). Each is
    shown as an answer shows a quote, image markup left out, with where it stands; `rag.related`
    keeps the verbatim quote and its offsets."""
    if answer.status != "insufficient_evidence" or not answer.related:
        return answer.answer
    lines = [answer.answer, "", CLOSEST]
    for k, quote in enumerate(answer.related, start=1):
        cited = citation_out(quote)
        page = f"page {cited.page}" if cited.page is not None else None
        where = ", ".join(part for part in (cited.title, cited.section, page) if part)
        # Its lines kept, indented under the item: a table's rows and a list's items stay apart.
        kept = [line.strip() for line in without_images(quote.text).splitlines() if line.strip()]
        shown = "\n   ".join(kept)
        lines.append(f"{k}. “{shown}” ({where})")
    return "\n".join(lines)


def finish_reason(answer: Answer) -> str:
    """OpenAI's finish_reason from the model's own (llama.cpp's): "length" when the writing was
    cut short, by the token limit or by our deadline; "stop" otherwise, also when the answer is a
    quote or a refusal that the model did not write."""
    return "length" if answer.finish_reason in ("length", "deadline") else "stop"


class OpenAIController(Controller):
    path = "/v1"
    tags = ["openai-compatible"]
    dependencies = DEPENDENCIES

    @get("/models", responses=responses(503))
    async def models(self, rag: Rag, key: ApiKey) -> ModelList:
        """The collections this key may query, as OpenAI 'models'."""
        names = [n for n in await rag.service.collections() if key.may_use(n)]
        return ModelList("list", [ModelCard(n, "model", 0, "rag-server") for n in names])

    @post(
        "/chat/completions",
        status_code=HTTP_200_OK,
        responses=responses(403, 404, 409, 422, 503)
        | {200: ResponseSpec(ChatCompletion, description=STREAM_NOTE.format(final="last chunk"))},
    )
    async def chat(
        self, data: ChatRequest, rag: Rag, key: ApiKey, auditor: Auditor
    ) -> ChatCompletion | EventStream:
        """Answer the last user message from the documents of collection `model` (empty or
        `default`: the configured collection). Earlier messages are not used as evidence."""
        model = "" if data.model in ("", "default") else data.model
        collection = collection_for(key, model or None, rag)
        if model and model not in await rag.service.collections():
            raise CollectionNotFoundError(f"no model (collection) named '{model}'")
        question = _question(data)
        name = model or collection
        if data.stream:
            rag.service.gate.check()
        with auditor.record("chat", key.id, collection, question) as entry:
            answer = await rag.service.ask(question, Filters(access=key.access), None, collection)
            audit_answer(entry, answer)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if data.stream:
            return EventStream(_chunks(answer, completion_id, created, name))
        usage = ChatUsage(
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.prompt_tokens + answer.completion_tokens,
        )
        return ChatCompletion(
            completion_id,
            "chat.completion",
            created,
            name,
            [Choice(0, AssistantMessage("assistant", content(answer)), finish_reason(answer))],
            usage,
            _extra(answer),
        )


async def _chunks(
    answer: Answer, completion_id: str, created: int, model: str
) -> AsyncIterator[ServerSentEventMessage]:
    """chat.completion.chunk events: the role, the verified text a few words at a time, then
    the finish with the `rag` extra, then [DONE]."""

    def chunk(
        delta: dict[str, Any], finish: str | None = None, **extra: Any
    ) -> ServerSentEventMessage:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return ServerSentEventMessage(data=msgspec.json.encode(body).decode())

    yield chunk({"role": "assistant", "content": ""})
    words = content(answer).split(" ")
    for i in range(0, len(words), 4):
        piece = " ".join(words[i : i + 4])
        yield chunk({"content": piece if i == 0 else " " + piece})
    yield chunk({}, finish_reason(answer), rag=msgspec.to_builtins(_extra(answer)))
    yield ServerSentEventMessage(data="[DONE]")
