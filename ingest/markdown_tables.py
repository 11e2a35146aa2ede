"""A Markdown (GFM) table read a row a line, as the other readers write one (`ingest/table_rows`).

Why: a Markdown table's delimiter row is padded with hyphens to its widest cell, and the
embedder's tokenizer makes a word piece of every hyphen. In the 18F handbook's dates page a
chunk of 192 word pieces held 178 of them and one date: the index held passages of punctuation,
and rows were cut between chunks wherever the padding fell. Read a row a line, without the
delimiter row and the padding, a passage holds rows whole ("October 1, 2024 | FY25 performance
cycle begins").

markdown-it-py (the CommonMark parser `rich` already installs) says where the tables are, so a
table-like block in a code fence, an indented code block or an HTML block stays as written. The
rows themselves are split here, on pipes not escaped, because the parser drops the cells beyond
the header's count as a browser does, and no word of the file may be lost.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from ingest.table_rows import row_line

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# A GFM delimiter row ("| --- | :---: |", "---|---"): only text holding one is parsed at all.
# Possessive quantifiers: a line of blanks costs its length, not its square.
_DELIMITER = re.compile(r"^[ \t>]*+\|?[ \t]*+:?-++:?[ \t]*+(?:\||$)", re.MULTILINE)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")  # markdown-it's lines: CR, LF or CRLF ends one
_PREFIX = re.compile(r"(?:[ \t]*+>)*+[ \t]*+")  # blockquote markers and indentation, kept
_CELL_BORDER = re.compile(r"^\|[ \t]*|(?<!\\)\|[ \t]*$")
_PIPE = re.compile(r"(?<!\\)\|")


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # Block structure only: where tables stand, not what their cells' inline markup means.
    return MarkdownIt("commonmark").enable("table").disable("inline")


def table_rows(text: str) -> str:
    """`text` with each GFM table's rows one line each, cells joined by " | ", and its delimiter
    row and empty rows left out; every other line exactly as it was."""
    if not _DELIMITER.search(text):
        return text
    tables = [t.map for t in _parser().parse(text) if t.type == "table_open" and t.map]
    if not tables:
        return text
    lines = _LINE.findall(text)[:-1] if text else []  # the pattern's last match is empty
    for first, end in reversed(tables):
        rows: list[str] = []
        for number in range(first, end):
            if number == first + 1:
                continue  # the delimiter row
            line = lines[number]
            body = line.rstrip("\r\n")
            prefix = _PREFIX.match(body)
            lead = prefix.group() if prefix else ""
            cells = [c.strip() for c in _PIPE.split(_CELL_BORDER.sub("", body[len(lead) :]))]
            if any(cells):
                rows.append(lead + row_line(cells) + line[len(body) :])
        lines[first:end] = rows
    return "".join(lines)
