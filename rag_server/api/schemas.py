"""Request and response bodies. Constraints here become 400 problem details naming the field."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from rag_core.settings import COLLECTION_MAX
from rag_server.documents import UploadStatus
from rag_server.grounding import AnswerStatus

NonBlank = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
TopK = Annotated[int, msgspec.Meta(ge=1, le=50)]
COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$"
CollectionName = Annotated[
    str,
    msgspec.Meta(min_length=3, max_length=COLLECTION_MAX, pattern=COLLECTION_PATTERN),
]


# Filters become a Chroma `where`, which reads keys starting with `$` as operators and refuses
# deep trees with a ValueError (a 500 if it got that far): keys, counts and values are bounded
# here so a bad filter is a 400 naming the field. `acl_` keys are the access stamps, not filters.
MAX_METADATA_FILTERS = 16
MAX_DOCUMENT_IDS = 256
MetaKey = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(?!acl_)[A-Za-z][A-Za-z0-9_.-]{0,63}$",
        description="a metadata field: a letter, then up to 63 letters, digits, '_', '.' or '-' "
        "(not `acl_...`)",
    ),
]
MetaValue = (
    Annotated[str, msgspec.Meta(max_length=1024)]
    | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    | Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
    | bool
)


class FiltersIn(msgspec.Struct, forbid_unknown_fields=True):
    """Applied inside retrieval, before top-k: only matching chunks compete."""

    document_id: (
        Annotated[
            list[Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]],
            msgspec.Meta(max_length=MAX_DOCUMENT_IDS),
        ]
        | None
    ) = None
    source_prefix: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    metadata: (
        Annotated[dict[MetaKey, MetaValue], msgspec.Meta(max_length=MAX_METADATA_FILTERS)] | None
    ) = None


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
    status: AnswerStatus
    citations: list[CitationOut]
    related: list[CitationOut]
    removed_sentences: int
    model: str
    usage: Usage
    timings_ms: dict[str, float]
    finish_reason: str | None = None  # "deadline": the verified part of what was written in time
    # The question as it was searched for, where that differs from what was asked: a long
    # message's asking sentence, or misspelt words read as the documents' words ("anual" as
    # "annual"). A caller can show it, so a person sees what was answered.
    read_as: str | None = None


class SourceOut(PassageOut, kw_only=True):
    """A passage shown to the model, as streamed before the answer (`sources` event)."""

    n: int


class Health(msgspec.Struct):
    status: Literal["ok", "ready"]  # not ready is a 503 problem, never this body
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
    status: UploadStatus
    document: DocumentOut
