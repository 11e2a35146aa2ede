"""A plain-text file's hard-wrapped paragraphs as one line each.

Why: text saved by an editor that fills paragraphs (a policy exported to .txt, an RFC, a
mail) breaks its sentences at a fixed width, and a quote kept the breaks: "When in doubt about a
copyright, send mail to\\ndebian-legal@lists.debian.org." The PDF reader joins a paragraph's
lines for the same reason. A break means something where the lines are not filled to a width: an
address, a list without markers, a table, a code listing, a heading above its paragraph. So a
line is joined to the next only where it reaches near the paragraph's width, and neither is a
list item, an underline, a row of aligned columns or an indented listing.
"""

from __future__ import annotations

import re

from ingest.text_headings import LIST_ITEM, UNDERLINE

# A line filled to within this share of its paragraph's widest line was broken by the filling.
_FILLED = 0.75
# Narrower paragraphs are no filled prose (an address, a short list).
_MIN_WIDTH = 50
# Aligned columns, or a table's bars; two spaces after a sentence's end are no column.
_COLUMNS = re.compile(r"[^\s.!?:;)\"'”’](?: {2,}|\t)\S|\|")
_BLANK_LINE = re.compile(r"(\n[ \t\r]*\n)")


def unwrap(text: str) -> str:
    """`text` with each filled paragraph's lines joined by a space; every other line, and every
    blank line, as it was."""
    margin = min((_indent(line) for line in text.split("\n") if line.strip()), default=0)
    parts = _BLANK_LINE.split(text)
    return "".join(
        part if k % 2 else _unwrap_paragraph(part, margin) for k, part in enumerate(parts)
    )  # odd parts are the blank lines between paragraphs


def _unwrap_paragraph(paragraph: str, indent: int) -> str:
    """`indent`: the text's margin, the least indentation of any of its lines."""
    lines = paragraph.split("\n")
    width = max(len(line.rstrip()) for line in lines)
    if len(lines) < 2 or width < _MIN_WIDTH:
        return paragraph
    out = [lines[0]]
    for line in lines[1:]:
        last = out[-1]
        if (
            len(last.rstrip()) >= _FILLED * width
            and _prose(last, indent)
            and _prose(line, indent)
            and LIST_ITEM.match(line.strip()) is None
        ):
            out[-1] = f"{last.rstrip()} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _prose(line: str, indent: int) -> bool:
    """A line of running text: not blank, no underline, no aligned columns, and not indented as
    a listing is (four columns past the text's margin)."""
    return (
        bool(line.strip())
        and UNDERLINE.fullmatch(line) is None
        and _COLUMNS.search(line.strip()) is None
        and _indent(line) < indent + 4
    )
