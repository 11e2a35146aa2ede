"""A PDF's text, page by page, as a person reads it: words spaced, lines of a paragraph joined,
hyphenation undone, and the running header and footer that repeat on every page left out.

pypdf (which still does the loader's security checks) drops the spaces between words on
justified lines of TeX-made PDFs ("Updatesareprocessedatleastonceamonth"): such words are
invisible to keyword search and the embedder, and quotes from them are unreadable. PDFium, through
pypdfium2, places spaces by glyph position and marks soft hyphens, and reads a 114-page manual in
half a second.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter

_SOFT_HYPHEN_BREAK = re.compile("\ufffe[ \t]*\n[ \t]*")
_BULLET = re.compile(r"^\s*(?:[•◦▪‣*–-]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_SENTENCE_END = (".", "!", "?", ":", ";")
_RUNNING_MAX_CHARS = 100  # headers and footers are short lines
_RUNNING_MIN_SHARE = 0.5  # a first/last line on at least half the pages is a running header/footer


def page_texts(data: bytes, expected_pages: int) -> list[str]:
    """Cleaned text of each page (an empty string for a page without text)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        raw: list[str] = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            try:
                raw.append(textpage.get_text_range())
            finally:
                textpage.close()
                page.close()
    finally:
        document.close()
    if len(raw) != expected_pages:
        raise ValueError(f"page count differs between readers ({len(raw)} vs {expected_pages})")
    pages = [_lines(text) for text in raw]
    running = _running_lines(pages)
    return [_reflow(_drop_running(lines, running)) for lines in pages]


def _lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SOFT_HYPHEN_BREAK.sub("", text).replace("\ufffe", "").replace("\x02", "")
    return [line.rstrip() for line in text.split("\n")]


def _key(line: str) -> str:
    """Page numbers and dates vary from page to page; the words of a running line do not."""
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _edges(lines: list[str]) -> list[str]:
    """The first and last two lines of a page that could be a running header or footer."""
    content = [line for line in lines if line.strip() and len(line) <= _RUNNING_MAX_CHARS]
    return content[:2] + content[-2:]


def _running_lines(pages: list[list[str]]) -> set[str]:
    if len(pages) < 3:
        return set()
    counts = Counter(key for lines in pages for key in {_key(line) for line in _edges(lines)})
    needed = max(3, _RUNNING_MIN_SHARE * len(pages))
    return {key for key, n in counts.items() if n >= needed and key.strip("# ")}


def _drop_running(lines: list[str], running: set[str]) -> list[str]:
    edges = set(_edges(lines))
    return [line for line in lines if not (line in edges and _key(line) in running)]


def _reflow(lines: list[str]) -> str:
    """Join the lines of a paragraph with spaces; a short line ends its paragraph (headings,
    last lines), and a bullet or numbered item starts a line of its own."""
    lengths = [len(line.strip()) for line in lines if line.strip()]
    if not lengths:
        return ""
    full = statistics.quantiles(lengths, n=10)[-1] if len(lengths) >= 2 else lengths[0]
    out: list[str] = []
    previous = ""
    for line in lines:
        text = line.strip()
        if not text:
            if out and out[-1] != "\n\n":
                out.append("\n\n")
            previous = ""
            continue
        if previous:
            if _BULLET.match(text):
                out.append("\n")
            elif len(previous) >= 0.75 * full and (
                not previous.endswith(_SENTENCE_END) or not text[:1].isupper()
            ):
                out.append("" if previous.endswith("-") and text[:1].islower() else " ")
            else:
                out.append("\n\n")
        out.append(text)
        previous = text
    return "".join(out).strip()
