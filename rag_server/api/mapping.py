"""Between the service's objects and the API's bodies: answers, citations, passages, filters,
and the audit entry of an answer."""

from __future__ import annotations

from typing import TypedDict

from rag_core.store import Hit
from rag_server.api.schemas import (
    AskResponse,
    CitationOut,
    FiltersIn,
    SearchResult,
    SourceOut,
    Usage,
)
from rag_server.audit import AuditEntry
from rag_server.auth import ApiKey
from rag_server.grounding import Quote
from rag_server.retrieval import Filters
from rag_server.service import Answer


def search_result(hit: Hit) -> SearchResult:
    return SearchResult(**_passage(hit), text=hit.chunk.text)


def audit_answer(entry: AuditEntry, answer: Answer) -> None:
    entry.status = answer.status
    entry.documents = [q.hit.chunk.document_id for q in answer.citations + answer.related]


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
        read_as=answer.read_as,
    )


def source_out(n: int, hit: Hit) -> SourceOut:
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
    """A quote's citation, under the section the quote stands in (not always the section its
    passage began in)."""
    passage = _passage(quote.hit)
    passage["section"] = quote.hit.chunk.section_at(quote.start)
    return CitationOut(**passage, n=quote.n, quote=quote.text, start=quote.start, end=quote.end)
