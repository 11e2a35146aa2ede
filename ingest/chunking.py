"""Split extracted text into chunks sized in the embedder's own word pieces, with exact offsets."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter

from ingest.loaders import LoadedDocument

# Bump when splitting or extraction changes meaning: stored chunks of older versions re-ingest.
# 2: HTML permalink anchors dropped; 3: access stamps, repeated-text offsets; 4: PDF text by PDFium
# (spaced words, joined lines, no running headers), no Markdown front matter.
PIPELINE_VERSION = "4"


@dataclass(frozen=True)
class Span:
    """A chunk before embedding: text[start:end] of the document, with its page and section."""

    index: int
    start: int
    end: int
    text: str
    page: int | None
    section: str | None


def chunk_id(document_id: str, index: int, text: str) -> str:
    """Deterministic: the same document, position and content always give the same id."""
    digest = hashlib.sha256(f"{document_id}\x00{index}\x00{text}".encode()).hexdigest()
    return digest[:32]


class Chunker:
    """llama-index's SentenceSplitter, counting tokens with the embedder's tokenizer."""

    def __init__(self, tokenize: Callable[[str], list[str]], chunk_size: int, overlap: int) -> None:
        if overlap >= chunk_size:
            raise ValueError("chunk overlap must be smaller than chunk size")
        self.splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=overlap,
            tokenizer=tokenize,
            paragraph_separator="\n\n",
            include_metadata=False,
            include_prev_next_rel=False,
        )
        self.fingerprint = hashlib.sha256(
            f"v{PIPELINE_VERSION}:{chunk_size}:{overlap}".encode()
        ).hexdigest()[:12]

    def split(self, document: LoadedDocument) -> list[Span]:
        """Chunks never cross a page boundary, so every chunk's page is the page of all its text."""
        text = document.text
        starts = document.page_starts or [0]
        bounds = [*starts[1:], len(text)]
        heading_offsets = [off for off, _ in document.headings]
        spans: list[Span] = []
        for seg_start, seg_end in zip(starts, bounds, strict=True):
            for start, end in self._split_segment(text, seg_start, seg_end):
                spans.append(
                    Span(
                        index=len(spans),
                        start=start,
                        end=end,
                        text=text[start:end],
                        page=_page_at(document.page_starts, start),
                        section=_section_at(document.headings, heading_offsets, start),
                    )
                )
        return spans

    def _split_segment(self, text: str, seg_start: int, seg_end: int) -> list[tuple[int, int]]:
        segment = text[seg_start:seg_end]
        if not segment.strip():
            return []
        out: list[tuple[int, int]] = []
        cursor = end = 0
        for node in self.splitter.get_nodes_from_documents([Document(text=segment)]):
            content = node.get_content()
            start = getattr(node, "start_char_idx", None)
            if (
                start is None
                or start < cursor
                or start + len(content) <= end  # a chunk always reaches past the one before
                or segment[start : start + len(content)] != content
            ):
                # The splitter looks a chunk up by its text, so a short chunk whose text also
                # occurs earlier ("::0:.") gets the earlier offset: find it after the last one.
                start = segment.find(content, max(cursor, end - len(content) + 1))
                if start < 0:
                    raise ValueError("chunk text is not a substring of the document")
            cursor, end = start + 1, start + len(content)
            out.append((seg_start + start, seg_start + end))
        return out


def _page_at(page_starts: list[int] | None, offset: int) -> int | None:
    if not page_starts:
        return None
    return bisect.bisect_right(page_starts, offset)


def _section_at(headings: list[tuple[int, str]], offsets: list[int], position: int) -> str | None:
    """The nearest heading at or before the chunk's start (a chunk may begin with its heading)."""
    i = bisect.bisect_right(offsets, position)
    return headings[i - 1][1] if i else None
