"""Where a PDF's paragraphs end, from the space between its lines.

A PDF's text has lines, not paragraphs. The reader ends a paragraph at a short line, and also
wherever a line ends a sentence and the next begins with a capital: without more to go on, that
is how a new paragraph looks. But a sentence that happens to end at the right margin looks the
same, and 53 of the 849 longer paragraphs of the HIPAA policies, exported from Word by
LibreOffice, were cut in two that way ("…to receive materials." / "Audit reports can be
requested…" is one paragraph in the DOCX).

Word processors set paragraphs apart with space (Word: 8 pt after each by default; LibreOffice's
"Text Body": 0.1 inch), so the gap between a paragraph's last line and the next is wider than
the gap between the lines inside one. Where a document does that consistently, at the breaks
that plainly end a paragraph, a wide gap marks a paragraph's end and a tight one a line within
it. TeX sets most paragraphs apart by indenting their first line instead, so where the plain
paragraph ends are not wider, the reader keeps its guess.
"""

from __future__ import annotations

import ctypes
import itertools
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pypdfium2 as pdfium

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# What ends a line that may end a paragraph (the reader's rule, `ingest/pdf_text.py`).
SENTENCE_END = (".", "!", "?", ":", ";")
# Wider than the usual distance between lines by this much: a paragraph's spacing (Word's 8 pt
# after 11 pt text at 1.08 spacing makes 1.6 times; LibreOffice's Text Body 1.5).
_WIDE = 1.25
# A document spaces its paragraphs when at least this share of the breaks that plainly end one
# (a short line that ends a sentence, then a capital) are wide, and there are enough of them.
_SPACED_SHARE = 0.8
_SPACED_MIN_BREAKS = 2
_SHORT = 0.6  # a line shorter than this share of the page's long lines ends its paragraph


@dataclass(frozen=True)
class Break:
    """The step from one line of a page to the next: the two lines' text and how far apart
    their baselines are (None where the page's characters cannot be placed)."""

    before: str
    after: str
    distance: float | None


def lines_at(text: str) -> list[tuple[int, str]]:
    """Each line of a page's text (as `get_text_range` gives it, "\r\n" between lines) with the
    offset of its first character, which is PDFium's index of that character where the page is
    `placed`."""
    out = []
    start = 0
    for line in _LINE_BREAK.split(text):
        out.append((start, line))
        start += len(line)
        start += 2 if text.startswith("\r\n", start) else 1
    return out


def placed(text: str, textpage: pdfium.PdfTextPage) -> bool:
    """Whether offsets in the page's text are PDFium's character indices: not where it holds
    characters outside the BMP, which the text writes as two units each."""
    return len(text) == int(textpage.count_chars())


def full_length(lengths: Sequence[int]) -> float:
    """A page's full line length, from its lines' lengths (at least one): the 90th percentile,
    so that a few overlong lines do not make every other line short."""
    return statistics.quantiles(lengths, n=10)[-1] if len(lengths) >= 2 else lengths[0]


@dataclass(frozen=True)
class PlacedLine:
    """A line of a page's text and where it stands: the baselines of its first and last line
    (the same for a line of the page; a table row read as one line spans several), read at
    the first character, and that character's left edge. None where it cannot be placed."""

    text: str
    start: int | None  # PDFium's index of the line's first character, where the page is placed
    x: float | None
    top: float | None
    bottom: float | None
    row: bool = False  # a table's row, its cells joined (`ingest/pdf_tables.py`)


def placed_lines(text: str, textpage: pdfium.PdfTextPage) -> list[PlacedLine]:
    """Each line of a page's text with the place of its first character."""
    import pypdfium2.raw as pdfium_c

    known = placed(text, textpage)
    x, y = ctypes.c_double(), ctypes.c_double()
    out = []
    for start, line in lines_at(text):
        first = next((start + i for i, c in enumerate(line) if not c.isspace()), None)
        if (
            known
            and first is not None
            and pdfium_c.FPDFText_GetCharOrigin(textpage.raw, first, x, y)
        ):
            out.append(PlacedLine(line, start, x.value, y.value, y.value))
        else:
            out.append(PlacedLine(line, start if known else None, None, None, None))
    return out


def page_breaks(lines: Sequence[PlacedLine]) -> list[Break]:
    """Each line break of a page, with the distance from the baseline above it to the one below."""
    return [
        Break(above.text.strip(), below.text.strip(), _distance(above.bottom, below.top))
        for above, below in itertools.pairwise(lines)
    ]


def _distance(above: float | None, below: float | None) -> float | None:
    return above - below if above is not None and below is not None else None


def paragraph_spacing(pages: Sequence[Sequence[Break]]) -> float | None:
    """The distance between lines beyond which a break ends a paragraph, where the document
    sets its paragraphs apart with space; None where it does not (TeX's indented paragraphs),
    and then the lines' spacing says nothing of where paragraphs end."""
    pitches = Counter(
        round(b.distance, 1)
        for breaks in pages
        for b in breaks
        if b.distance is not None and b.distance > 0 and b.before and b.after
    )
    if not pitches:
        return None
    wide = _WIDE * pitches.most_common(1)[0][0]  # the distance between a paragraph's lines
    plain = [b for breaks in pages for b in _plain_ends(breaks)]
    spaced = sum(1 for b in plain if b.distance is not None and b.distance > wide)
    if len(plain) < _SPACED_MIN_BREAKS or spaced < _SPACED_SHARE * len(plain):
        return None
    return wide


def _plain_ends(breaks: Sequence[Break]) -> list[Break]:
    """The breaks of a page that plainly end a paragraph: after a short line that ends a
    sentence, before a long line that starts with a capital."""
    lengths = [len(b.before) for b in breaks if b.before]
    if len(lengths) < 2:
        return []
    full = full_length(lengths)
    return [
        b
        for b in breaks
        if b.before.endswith((".", "!", "?"))
        and len(b.before) < _SHORT * full
        and b.after[:1].isupper()
        and len(b.after) >= _SHORT * full
    ]


def mark_paragraph_ends(text: str, breaks: Sequence[Break], wide: float) -> str:
    """`text` with an empty line after each line that ends a sentence where the next line
    stands a paragraph's spacing below it (or cannot be placed): the one break the reader then
    makes there. Any other break is a line inside a paragraph."""
    lines = _LINE_BREAK.split(text)
    out = [lines[0]]
    for line, step in zip(lines[1:], breaks, strict=True):
        ends = step.before.endswith(SENTENCE_END) and (
            step.distance is None or not 0 < step.distance <= wide
        )
        out.append("\n\n" if ends else "\n")
        out.append(line)
    return "".join(out)
