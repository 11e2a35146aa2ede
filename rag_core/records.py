"""What one stored chunk is, and how it becomes a Chroma record (scalar metadata) and back.

Chroma metadata holds scalars only and no None, so the record encoding lives here, apart from
the store's reads and writes: ingestion writes records, the server reads them, both through this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar

T = TypeVar("T")

# Document-level access, stamped on every chunk: Chroma metadata holds scalars only, so a group
# becomes a boolean key (`acl_g_hr`) that a `where` clause can test, plus a public flag.
ACL_PUBLIC = "acl_public"
ACL_GROUP_PREFIX = "acl_g_"

# Where a Sphinx build publishes each page's markup source, for the page's "Show Source" link.
SPHINX_SOURCES = "_sources"


def source_copy(source: str) -> bool:
    """Whether the document at `source` is a Sphinx build's copy of a page's markup (a file under
    `_sources`). Its text is the page's, and the page is what a reader checks a citation against:
    retrieval gives the page its copy's place, and a quote of the copy cites the page that holds
    it."""
    return SPHINX_SOURCES in PurePosixPath(source.replace("\\", "/")).parts[:-1]


@dataclass(frozen=True)
class Chunk:
    """One stored passage and everything needed to cite it."""

    chunk_id: str
    document_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    chunk_index: int
    chunk_count: int
    content_hash: str
    pipeline: str
    ingested_at: str
    page: int | None = None
    section: str | None = None
    groups: tuple[str, ...] = ()  # empty: public to every key of the collection
    # Headings that begin inside the chunk: (document offset, heading), in order.
    headings: tuple[tuple[int, str], ...] = ()
    # Code blocks, or their part inside the chunk: (document start, document end), in order.
    code: tuple[tuple[int, int], ...] = ()

    def section_at(self, offset: int) -> str | None:
        """The section a quote starting at document offset `offset` stands in: the last heading
        inside the chunk before it, else the section the chunk began in. A chunk may run on
        past a heading ("…report it at once. Devices and Workstations. Screens lock…")."""
        inside = [heading for at, heading in self.headings if at <= offset]
        return inside[-1] if inside else self.section

    def metadata(self, revoked: Iterable[str] = ()) -> dict[str, str | int | bool]:
        """Chroma metadata: scalar values only, and no None (Chroma rejects it). Chroma merges
        metadata on upsert, so groups a document loses (`revoked`) are written as False."""
        meta: dict[str, str | int | bool] = {
            "document_id": self.document_id,
            "source": self.source,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "chunk_index": self.chunk_index,
            "chunk_count": self.chunk_count,
            "content_hash": self.content_hash,
            "pipeline": self.pipeline,
            "ingested_at": self.ingested_at,
        }
        if self.page is not None:
            meta["page"] = self.page
        if self.section is not None:
            meta["section"] = self.section
        if self.headings:
            meta["headings"] = json.dumps([[at, heading] for at, heading in self.headings])
        if self.code:
            meta["code"] = json.dumps([[a, b] for a, b in self.code])
        meta[ACL_PUBLIC] = not self.groups
        meta["groups"] = ",".join(self.groups)
        meta.update({ACL_GROUP_PREFIX + g: False for g in revoked})
        meta.update({ACL_GROUP_PREFIX + g: True for g in self.groups})
        return meta

    @classmethod
    def from_record(cls, chunk_id: str, text: str, meta: Mapping[str, Any]) -> Chunk:
        page = meta.get("page")
        section = meta.get("section")
        return cls(
            chunk_id=chunk_id,
            document_id=str(meta["document_id"]),
            source=str(meta["source"]),
            title=str(meta.get("title", "")),
            text=text,
            start=int(meta["start"]),
            end=int(meta["end"]),
            chunk_index=int(meta["chunk_index"]),
            chunk_count=int(meta["chunk_count"]),
            content_hash=str(meta["content_hash"]),
            pipeline=str(meta["pipeline"]),
            ingested_at=str(meta["ingested_at"]),
            page=int(page) if page is not None else None,
            section=str(section) if section is not None else None,
            groups=tuple(g for g in str(meta.get("groups", "")).split(",") if g),
            headings=_pairs(meta.get("headings"), str),
            code=_pairs(meta.get("code"), int),
        )


def _pairs(stored: Any, second: Callable[[Any], T]) -> tuple[tuple[int, T], ...]:
    """Stored (offset, value) pairs back (`headings`, `code`); absent (chunks of an older
    pipeline) or malformed, none: the chunk's own section then stands for all of it, and its
    sentences are split as prose, as before."""
    try:
        pairs = json.loads(stored) if isinstance(stored, str) else []
        return tuple((int(at), second(value)) for at, value in pairs)
    except (ValueError, TypeError):
        return ()


EPOCH = datetime.min.replace(tzinfo=UTC)  # sorts before every real ingested_at
Version = tuple[datetime, str]
"""Which write of its document a record belongs to: (ingested_at, content_hash). Every chunk of
one write carries the same pair, and the pairs order the writes of a document the same way for
every reader, so writers that raced (two API replicas taking an upload of one name) each keep the
newest version they see and together leave exactly one."""


def instant(stamp: str) -> datetime:
    """An `ingested_at` as an aware datetime; one that does not parse sorts first."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return EPOCH
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def content_hash(data: bytes) -> str:
    """A file's `content_hash`: what ingestion stamps on every chunk of it, and what its kept
    original (rag_core.originals) is found and checked by."""
    return hashlib.sha256(data).hexdigest()


def version(meta: Mapping[str, Any]) -> Version:
    return instant(str(meta.get("ingested_at", ""))), str(meta.get("content_hash", ""))


def chunks_from(
    ids: Iterable[str], texts: Iterable[str], metas: Iterable[Mapping[str, Any]]
) -> list[Chunk]:
    """The chunks of parallel columns, as Chroma returns records."""
    return [
        Chunk.from_record(cid, text, meta)
        for cid, text, meta in zip(ids, texts, metas, strict=True)
    ]


@dataclass
class DocumentState:
    """What the store holds of one document: enough to decide whether to re-ingest it."""

    chunk_ids: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    pipelines: set[str] = field(default_factory=set)
    chunk_counts: set[int] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    latest: datetime = EPOCH  # the newest ingested_at of its chunks

    def add(self, chunk_id: str, meta: Mapping[str, Any]) -> None:
        """Count in one stored record of the document (its metadata alone: no text needed)."""
        self.chunk_ids.add(chunk_id)
        self.latest = max(self.latest, instant(str(meta.get("ingested_at", ""))))
        self.hashes.add(str(meta.get("content_hash")))
        self.pipelines.add(str(meta.get("pipeline")))
        self.chunk_counts.add(int(meta.get("chunk_count", -1)))
        self.groups.add(str(meta.get("groups", "")))

    def is_complete(self, content_hash: str, pipeline: str, groups: tuple[str, ...] = ()) -> bool:
        """True when every chunk of exactly this content, pipeline and access stamp is present, and
        nothing else. A crash mid-write leaves a mix of hashes or fewer chunks than chunk_count."""
        return (
            self.hashes == {content_hash}
            and self.pipelines == {pipeline}
            and self.chunk_counts == {len(self.chunk_ids)}
            and self.groups == {",".join(groups)}
        )


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
