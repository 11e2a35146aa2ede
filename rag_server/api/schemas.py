"""Request and response bodies. Constraints here become 400 problem details naming the field."""

from __future__ import annotations

from typing import Annotated

import msgspec

NonBlank = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
TopK = Annotated[int, msgspec.Meta(ge=1, le=50)]


MetaValue = str | int | float | bool


class FiltersIn(msgspec.Struct, forbid_unknown_fields=True):
    """Applied inside retrieval, before top-k: only matching chunks compete."""

    document_id: list[Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]] | None = None
    source_prefix: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    metadata: dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], MetaValue] | None = (
        None
    )


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    query: NonBlank
    top_k: TopK = 5
    filters: FiltersIn | None = None


class PassageOut(msgspec.Struct, kw_only=True):
    """Where a passage comes from; the fields every passage-shaped response shares."""

    document_id: str
    source: str
    title: str
    page: int | None
    section: str | None
    chunk_id: str
    score: float


class SearchResult(PassageOut, kw_only=True):
    text: str


class SearchResponse(msgspec.Struct):
    results: list[SearchResult]
    timings_ms: dict[str, float] = msgspec.field(default_factory=dict)


class AskRequest(msgspec.Struct, forbid_unknown_fields=True):
    question: NonBlank
    top_k: TopK | None = None
    filters: FiltersIn | None = None
    stream: bool = False


class CitationOut(PassageOut, kw_only=True):
    """A cited passage: `quote` is exactly the document's extracted text at `start`..`end`."""

    n: int
    quote: str
    start: int
    end: int


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int


class AskResponse(msgspec.Struct):
    answer: str
    status: str
    citations: list[CitationOut]
    related: list[CitationOut]
    removed_sentences: int
    model: str
    usage: Usage
    timings_ms: dict[str, float]


class SourceOut(PassageOut, kw_only=True):
    """A passage shown to the model, as streamed before the answer (`sources` event)."""

    n: int


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)
