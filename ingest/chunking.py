"""Split extracted text into chunks sized in the embedder's own word pieces, with exact offsets."""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter

from ingest.loaders import LoadedDocument, LoadError

# Bump when splitting or extraction changes meaning: stored chunks of older versions re-ingest.
# 2: HTML permalink anchors dropped; 3: access stamps, repeated-text offsets; 4: PDF text by PDFium
# (spaced words, joined lines, no running headers), no Markdown front matter; 5: PDF sections (from
# the outline or the heading type), a numbered PDF heading no longer joins the line before it;
# 6: PDF running headers of several lines and page numbers dropped, numbered PDF headings whatever
# their type size, type size read through the text matrix, Word's "o"/"§" bullets as bullets;
# 7: DOCX and HTML list items keep the number or bullet shown ("3.", "b)", "•"); DOCX text in content
# controls, tracked insertions, fields and smart tags is read, and a merged table cell once; a PDF
# heading wrapped onto two lines is one line, a sentence over a page break ends on its first
# page, and a hyphen at a PDF line's end is kept where it is the word's own; a chunk stores the
# headings inside it; 8: a web address broken at a PDF line's end is one word again, a sentence
# carried over a page break does not end at "U.S.", and where a PDF spaces its paragraphs, the
# spacing says where they end; 9: a plain-text file's headings are the short lines standing
# alone above a paragraph, or underlined; 10: a PDF table, and an HTML data table, read a row a
# line, its cells joined by " | "; 11: a Markdown file reads as its rendered page (a link as its
# text, a table a row a line), and a PDF's contents lines (dot leaders and a page number) are left
# out; 12: a PDF's running titles beside the page number ("44 Chapter 5. Managing Packages") are
# left out; 13: an HTML or Markdown code block keeps its lines, and a chunk stores where each is;
# 14: reStructuredText (`.rst`, Sphinx's `_sources/*.rst.txt`) is read as its rendered page, a
# plain-text file's filled paragraphs a line each, and a chunk's headings include one at its start;
# 15: a source in a Sphinx build's `_sources` shows a link to another page by its title, and a
# plain-text title underlined with "~~~" or "***" is a heading; 16: an HTML or reST footnote's mark
# is left out of its sentence, footnotes written as <aside> are read, without their labels, and a
# file of a Sphinx source tree (no build) shows a link to another file by its title; 17: a Markdown
# footnote ("[^1]") is read as the others, its mark left out and its text kept, and a PDF page's
# own printed number standing alone at its edge is left out where most pages print theirs beside
# a running title.
PIPELINE_VERSION = "17"

# The splitter's time and memory grow with the text it is handed at once: it tokenizes all of it
# before splitting, and punkt scans a whole paragraph under a 5 s regex timeout (a 20 MB paragraph
# of one sentence hit it after 26 s and left 1.6 GB behind). So it is handed windows of at most
# this many characters, cut at a paragraph, else a sentence, else a space: chunking is linear in
# the document and its memory bounded by the window. About 40 chunks of the default size.
WINDOW_CHARS = 32_768
# Token counts of short pieces are remembered: documents repeat sentences (boilerplate, tables,
# one line pasted thousands of times), and the splitter counts every sentence of a long paragraph.
_COUNT_CACHE = 4096
_CACHED_CHARS = 512
_SENTENCE_END = re.compile(r"[.!?。！？][\"')\]]*\s")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Span:
    """A chunk before embedding: text[start:end] of the document, with its page and section."""

    index: int
    start: int
    end: int
    text: str
    page: int | None
    section: str | None
    # Headings that begin inside the chunk, after its start: (document offset, heading), so that
    # a quote after one is cited under it, not under the section the chunk began in.
    headings: tuple[tuple[int, str], ...] = ()
    # The part of each code block inside the chunk: (document start, document end).
    code: tuple[tuple[int, int], ...] = ()


def chunk_id(document_id: str, index: int, text: str, content_hash: str) -> str:
    """Deterministic: the same file, position and text always give the same id. The file's hash
    is part of it, so two versions of a document never share a chunk id: each chunk belongs to
    one write, and a writer settling which version stays (`Pipeline`) never deletes a chunk that
    the version kept still needs."""
    digest = hashlib.sha256(
        f"{document_id}\x00{index}\x00{text}\x00{content_hash}".encode()
    ).hexdigest()
    return digest[:32]


class Chunker:
    """llama-index's SentenceSplitter, counting tokens with the embedder's tokenizer, fed one
    bounded window of the document at a time."""

    def __init__(
        self,
        tokenize: Callable[[str], list[str]],
        chunk_size: int,
        overlap: int,
        window_chars: int = WINDOW_CHARS,
    ) -> None:
        if overlap >= chunk_size:
            raise ValueError("chunk overlap must be smaller than chunk size")
        self.window_chars = window_chars
        self.splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=overlap,
            tokenizer=_counting(tokenize),
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
        pieces = (
            window
            for seg_start, seg_end in zip(starts, bounds, strict=True)
            for window in windows(text, seg_start, seg_end, self.window_chars)
        )
        for piece_start, piece_end in pieces:
            for start, end in self._split_segment(text, piece_start, piece_end):
                spans.append(
                    Span(
                        index=len(spans),
                        start=start,
                        end=end,
                        text=text[start:end],
                        page=_page_at(document.page_starts, start),
                        section=_section_at(document.headings, heading_offsets, start),
                        headings=_headings_within(document.headings, heading_offsets, start, end),
                        code=_code_within(document.code, start, end),
                    )
                )
        return spans

    def _split_segment(self, text: str, seg_start: int, seg_end: int) -> list[tuple[int, int]]:
        segment = text[seg_start:seg_end]
        if not segment.strip():
            return []
        try:
            nodes = self.splitter.get_nodes_from_documents([Document(text=segment)])
        except (TimeoutError, ValueError, RecursionError) as exc:
            # punkt's regex timeout, "Single token exceeded chunk size": refuse the file, with
            # where, instead of failing the request or the whole bulk run.
            raise LoadError(
                f"text near character {seg_start} could not be split into chunks "
                f"({type(exc).__name__}: {exc})"
            ) from None
        found = [(node.get_content(), getattr(node, "start_char_idx", None)) for node in nodes]
        placed = _place(segment, found, farthest=False)
        if _uncovered(segment, placed):
            # Repetitive text: a chunk's text also stands where the chunk before already reached,
            # and placing it there left the rest of the segment in no chunk. Place each chunk as
            # far on as it can stand without leaving words between it and the one before.
            with contextlib.suppress(ValueError):  # no such placement: keep the splitter's
                placed = _place(segment, found, farthest=True)
        return [(seg_start + start, seg_start + end) for start, end in placed]


def _place(
    segment: str, chunks: list[tuple[str, int | None]], farthest: bool
) -> list[tuple[int, int]]:
    """(start, end) of each chunk's text in `segment`, in order, each reaching past the one before.

    The splitter looks a chunk up by its text, so a short chunk whose text also occurs earlier
    ("::0:.") gets the earlier offset: then it is found after the last one. With `farthest`, every
    chunk is put at its last occurrence that leaves only whitespace after the chunk before."""
    out: list[tuple[int, int]] = []
    cursor = end = 0
    for content, hint in chunks:
        start = hint
        if (
            farthest
            or start is None
            or start < cursor
            or start + len(content) <= end  # a chunk always reaches past the one before
            or segment[start : start + len(content)] != content
        ):
            start = segment.find(content, max(cursor, end - len(content) + 1))
            if start < 0:
                raise ValueError("chunk text is not a substring of the document")
            while farthest:
                later = segment.find(content, start + 1)
                if later < 0 or segment[end:later].strip():
                    break
                start = later
        cursor, end = start + 1, start + len(content)
        out.append((start, end))
    return out


def _uncovered(segment: str, spans: list[tuple[int, int]]) -> bool:
    """Whether any word of `segment` is in none of `spans` (sorted by start)."""
    reached = 0
    for start, end in spans:
        if segment[reached:start].strip():
            return True
        reached = max(reached, end)
    return bool(segment[reached:].strip())


def windows(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut text[start:end] into consecutive (start, end) windows of at most `limit` characters.

    Each cut falls at the last paragraph break in the second half of the window, else the last
    sentence end, else the last whitespace, else at the limit (a run without spaces, such as
    base64). Every character is looked at a bounded number of times: linear in end - start.
    """
    while end - start > limit:
        low, high = start + limit // 2, start + limit
        cut = text.rfind("\n\n", low, high - 1)
        if cut >= 0:
            cut += 2
        else:
            cut = _last_end(_SENTENCE_END, text, low, high) or _last_end(_SPACE, text, low, high)
            cut = cut or high
        yield start, cut
        start = cut
    if end > start:
        yield start, end


def _last_end(pattern: re.Pattern[str], text: str, low: int, high: int) -> int:
    """The end of the last match of `pattern` inside text[low:high], or 0 when there is none."""
    last = 0
    for found in pattern.finditer(text, low, high):
        last = found.end()
    return last


def _counting(tokenize: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """The tokenizer, with short pieces' results remembered (the splitter only counts them)."""
    cached = lru_cache(maxsize=_COUNT_CACHE)(lambda text: tuple(tokenize(text)))

    def count(text: str) -> list[str]:
        return list(cached(text)) if len(text) <= _CACHED_CHARS else tokenize(text)

    return count


def _page_at(page_starts: list[int] | None, offset: int) -> int | None:
    if not page_starts:
        return None
    return bisect.bisect_right(page_starts, offset)


def _section_at(headings: list[tuple[int, str]], offsets: list[int], position: int) -> str | None:
    """The nearest heading at or before the chunk's start (a chunk may begin with its heading)."""
    i = bisect.bisect_right(offsets, position)
    return headings[i - 1][1] if i else None


def _headings_within(
    headings: list[tuple[int, str]], offsets: list[int], start: int, end: int
) -> tuple[tuple[int, str], ...]:
    """The headings that begin inside the chunk, at its start included: a chunk that opens with
    its heading ("Equipment and Accounts") gave no heading at 0, and a refusal quoted the
    heading as the passage's closest sentence."""
    lo, hi = bisect.bisect_left(offsets, start), bisect.bisect_left(offsets, end)
    return tuple(headings[lo:hi])


def _code_within(code: list[tuple[int, int]], start: int, end: int) -> tuple[tuple[int, int], ...]:
    """The part of each code block that lies in the chunk (a block may run over its edge)."""
    lo = max(bisect.bisect_right(code, (start, start)) - 1, 0)  # one may begin before the chunk
    hi = bisect.bisect_left(code, (end, -1))  # those that begin before its end
    return tuple((max(a, start), min(b, end)) for a, b in code[lo:hi] if b > start)
