"""Request and response bodies. Constraints here become 400 problem details naming the field."""

from __future__ import annotations

from typing import Annotated

import msgspec

NonBlank = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
TopK = Annotated[int, msgspec.Meta(ge=1, le=50)]
COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$"
CollectionName = Annotated[
    str,
    msgspec.Meta(min_length=3, max_length=512, pattern=COLLECTION_PATTERN),
]


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
    collection: CollectionName | None = None


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
    collection: CollectionName | None = None


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
    finish_reason: str | None = None  # "deadline": the verified part of what was written in time


class SourceOut(PassageOut, kw_only=True):
    """A passage shown to the model, as streamed before the answer (`sources` event)."""

    n: int


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details: every error response has this shape."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class DocumentOut(msgspec.Struct):
    document_id: str
    source: str
    title: str
    groups: list[str]
    chunks: int
    pages: int | None
    ingested_at: str


class DocumentList(msgspec.Struct):
    documents: list[DocumentOut]
    total: int
    offset: int
    limit: int


class UploadOut(msgspec.Struct):
    collection: str
    status: str  # "added" | "updated" | "unchanged"
    document: DocumentOut
