"""Request and response bodies. Constraints here become 400 problem details naming the field."""

from __future__ import annotations

from typing import Annotated

import msgspec

NonBlank = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
TopK = Annotated[int, msgspec.Meta(ge=1, le=50)]


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    query: NonBlank
    top_k: TopK = 5


class SearchResult(msgspec.Struct):
    chunk_id: str
    document_id: str
    source: str
    title: str
    page: int | None
    section: str | None
    text: str
    score: float


class SearchResponse(msgspec.Struct):
    results: list[SearchResult]


class AskRequest(msgspec.Struct, forbid_unknown_fields=True):
    question: NonBlank
    top_k: TopK | None = None


class CitationOut(msgspec.Struct):
    n: int
    document_id: str
    source: str
    title: str
    page: int | None
    section: str | None
    chunk_id: str
    quote: str
    start: int
    end: int
    score: float


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int


class AskResponse(msgspec.Struct):
    answer: str
    status: str
    citations: list[CitationOut]
    model: str
    usage: Usage
    timings_ms: dict[str, float]


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)
