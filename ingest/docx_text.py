"""The text Word shows in a DOCX body, where python-docx's own `.text` shows less.

python-docx reads a paragraph's text from its direct runs and hyperlinks only, and a body's
blocks from its direct paragraphs and tables only. Word documents from templates and review
cycles keep much of their text deeper, and all of it would be dropped without a word:

- content controls (`w:sdt`): a template's fields inside a paragraph ("Policy owner: [the
  owner's name]") and whole sections of the body wrapped in one;
- tracked changes: the text of an insertion (`w:ins`) not yet accepted is what the document
  says now, while a deletion (`w:del`, `w:moveFrom`) is not;
- simple fields (`w:fldSimple`), smart tags and custom XML around runs.

Read here, as Word shows them: every run of the paragraph, at any depth, except deleted or
moved-away text, text boxes (not read, as before: they stand outside the line's reading order),
drawings' fallback copies (they repeat the drawing), and a content control still showing its
placeholder prompt ("Click or tap here to enter text."). A table of contents in a content control is left
out as before: it repeats the headings with page numbers. A table's cell is read whole, nested
tables and content controls included, and a cell merged across columns once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from docx.oxml.ns import nsmap
from docx.table import Table, _Cell
from lxml import etree

from ingest.docx_numbering import ListNumbering
from ingest.table_rows import row_line

_NS = {"w": nsmap["w"], "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}
_W = "{" + _NS["w"] + "}"
P, TBL = _W + "p", _W + "tbl"
_SDT, _CUSTOM_XML = _W + "sdt", _W + "customXml"
# Every run a reader sees. python-docx parses each w:r as its CT_R, whose `.text` maps tabs,
# breaks and non-breaking hyphens as Word shows them.
_RUNS = etree.XPath(
    ".//w:r[not(ancestor::w:del or ancestor::w:moveFrom or ancestor::w:txbxContent"
    " or ancestor::mc:Fallback or ancestor::w:sdt[w:sdtPr/w:showingPlcHdr])]",
    namespaces=_NS,
)
_TOC = etree.XPath(
    "w:sdtPr/w:docPartObj/w:docPartGallery[starts-with(@w:val, 'Table of Contents')]",
    namespaces=_NS,
)
_PLACEHOLDER = etree.XPath("w:sdtPr/w:showingPlcHdr", namespaces=_NS)


class BodyText:
    """The text of a body's paragraphs and tables, each list item after its Word number. Call in
    reading order: the numbers count every list item before."""

    def __init__(self, numbering: ListNumbering) -> None:
        self.numbering = numbering

    def paragraph(self, p: Any) -> str:
        """The paragraph's text as Word shows it, its number or bullet first, stripped."""
        marker = self.numbering.marker(p)  # counted even when the item is empty, as Word does
        line = "".join(run.text for run in _RUNS(p)).strip()
        return f"{marker} {line}" if marker and line else line

    def table_rows(self, table: Table) -> list[str]:
        """One line per row, its cells joined by " | ". A cell merged across columns appears
        once; one merged across rows repeats in each, so that every row reads whole."""
        rows = []
        for row in table.rows:
            cells: list[str] = []
            previous = None
            for cell in row.cells:
                if cell is not previous:  # python-docx lists a spanning cell once per column
                    cells.append("\n".join(self._cell_lines(cell)))
                previous = cell
            rows.append(row_line(cells))
        return rows

    def _cell_lines(self, cell: _Cell) -> list[str]:
        lines: list[str] = []
        for block in blocks(cell._tc):
            found = (
                [self.paragraph(block)] if block.tag == P else self.table_rows(Table(block, cell))
            )
            lines.extend(line for line in found if line)
        return lines


def blocks(parent: Any) -> Iterator[Any]:
    """The paragraphs (`w:p`) and tables (`w:tbl`) of a body or cell in reading order, through
    block-level content controls and custom XML."""
    for child in parent.iterchildren():
        if child.tag in (P, TBL):
            yield child
        elif child.tag == _SDT:
            if not _TOC(child) and not _PLACEHOLDER(child):
                content = child.find(_W + "sdtContent")
                if content is not None:
                    yield from blocks(content)
        elif child.tag == _CUSTOM_XML:
            yield from blocks(child)
