"""The headings of a plain-text file: the lines a reader takes for headings.

Why: a .txt has no markup, yet policy text saved as plain text keeps its headings as lines of
their own ("Opening Hours and Access" between blank lines, or a line underlined with "=" or "-"),
and a citation should name the section its quote stands in, as it does for Markdown, HTML, DOCX
and PDF. Headings only label sections: chunk boundaries never depend on them, so a line taken
for a heading by mistake ("import os" alone between paragraphs) costs a label, not an answer.

A heading is:
- a line underlined by a line of three or more "=" or "-" (Setext, reStructuredText); or
- a paragraph of one short line (at most 12 words and 80 characters) that ends without a
  sentence's or a list lead-in's punctuation, is no list item, and is followed by a paragraph.
  A run of more than two such lines in a row is a list of short items, not headings (a title
  and its first section's heading make two).
"""

from __future__ import annotations

import re

from ingest.list_markers import item_marker
from ingest.pdf_paragraphs import SENTENCE_END

# A run of non-blank lines: one paragraph, as a reader sees it.
_BLOCK = re.compile(r"(?:^[ \t]*\S[^\n]*(?:\n|\Z))+", re.MULTILINE)
# A title's underline, as reST-like text draws it (and a line ingest/text_unwrap.py never joins).
UNDERLINE = re.compile(r"[ \t]*(?:={3,}|-{3,}|~{3,}|\*{3,})[ \t\r]*")
# The loaders' bullets, and the "+" and "·" plain text also sets before an item (and
# ingest/text_unwrap.py, which joins no item to the line before it).
LIST_ITEM = item_marker("+·")
_ENDS_NO_HEADING = (*SENTENCE_END, ",")  # a sentence's or a list lead-in's end
_MAX_WORDS = 12
_MAX_CHARS = 80
_MAX_RUN = 2


def _is_short_line(line: str) -> bool:
    """One line that could be a heading: short, no sentence or lead-in end, no list item."""
    words = line.split()
    return (
        0 < len(words) <= _MAX_WORDS
        and len(line) <= _MAX_CHARS
        and not line.endswith(_ENDS_NO_HEADING)
        and any(c.isalpha() for c in line)
        and LIST_ITEM.match(line) is None
    )


def text_headings(text: str) -> list[tuple[int, str]]:
    """(offset, heading) of each heading, in order; `text[offset:offset + len(heading)]` is the
    heading."""
    headings: list[tuple[int, str]] = []
    run: list[tuple[int, str]] = []  # consecutive one-line paragraphs that could be headings
    for block in _BLOCK.finditer(text):
        lines = block.group().rstrip("\n").split("\n")
        first = lines[0].strip()
        offset = block.start() + lines[0].index(first)
        if len(lines) >= 2 and UNDERLINE.fullmatch(lines[1]) and _is_short_line(first):
            headings.extend(run if len(run) <= _MAX_RUN else [])
            headings.append((offset, first))
            run = []
        elif len(lines) == 1 and _is_short_line(first):
            run.append((offset, first))
        else:  # a paragraph: the short lines just before it headed it, unless they were a list
            headings.extend(run if len(run) <= _MAX_RUN else [])
            run = []
    return headings
