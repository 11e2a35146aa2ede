"""A PDF table, read a row at a time, its cells joined by " | " as every reader writes a row
(`ingest/table_rows.py`). Rules or none: the reading goes by where the text stands.

Why: Word and LibreOffice write a table cell by cell, so PDFium gives each cell's lines in turn,
and the reader joined them into one run of words: the HIPAA policies' inheritance table read
"Security Management Process - 164.308(a)(1) (i) Risk Management Policy Yes Assigned Security
Responsibility - 164.308(a)(2) Roles Policy Partially…", where the DOCX reads one row a line,
"Security Management Process - 164.308(a)(1)(i) | Risk Management Policy | Yes". A passage
retrieved for a question about one control then held a run of words in which neither a reader
nor the embedder can tell which policy covers which rule.

The layout tells the cells apart. A cell's lines go down the page at one left edge; the next
cell of the same row starts back up, at the row's first baseline, further right. A table is
taken where a page shows at least two such rows, and their cells' left edges are its columns.
PDFium reads cells that share a baseline as one line ("Roles Policy Partially"): those lines,
and the table's rows of one line each, are cut where a word starts at a column's left edge; a
header whose first cell wraps above such a line ("Administrative" over "Controls HIPAA Rule
Datica Control Inherited") is one row with it. A page without two such rows is left exactly as it was, so prose, lists and
two-column pages (whose columns do not come back up to a row's baseline) read as before.
"""

from __future__ import annotations

import ctypes
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ingest.pdf_paragraphs import PlacedLine
from ingest.table_rows import row_line

if TYPE_CHECKING:
    import pypdfium2 as pdfium

_SAME = 2.0  # points: two baselines or left edges this close are the same
_MIN_ROWS = 2  # rows of several cells that make a table
_MAX_CELL_STEP = 2.0  # a cell's next line is at most this many of the page's line pitches below
# A table's cell is a few lines; two columns of prose side by side are not a row of cells.
_MAX_CELL_LINES = 12


@dataclass(eq=False)  # a row is itself: `in` asks whether it is that group of lines
class _Row:
    """Lines read as one table row, cell by cell (or, with one cell, as they were)."""

    cells: list[list[PlacedLine]]

    @property
    def lines(self) -> list[PlacedLine]:
        """The row's lines in the page's order: its cells' lines, one cell after another."""
        return [line for cell in self.cells for line in cell]

    @property
    def top(self) -> float:
        top = self.lines[0].top
        assert top is not None
        return top


def table_rows(lines: Sequence[PlacedLine], textpage: pdfium.PdfTextPage) -> list[PlacedLine]:
    """The page's lines, with each row of a table made one line of its cells."""
    if not any(_next_cell(above, below) for above, below in itertools.pairwise(lines)):
        return list(lines)  # no line goes back up and right: prose (most pages), read as it is
    grouped = _rows(lines, textpage)
    whole = _whole_rows(grouped)
    columns = _columns(whole)
    if not columns:
        return list(lines)
    # Outside the rows of several cells, each line stands alone: a heading above a table, or a
    # row of one line each (the header), never joins the lines below it into one cell.
    pitch = _cell_pitch(whole)
    rows = [
        single
        for row in grouped
        for single in (
            [row]
            if row in whole or _merged_row(row, columns, textpage)
            else _header_rows(row, columns, pitch, textpage)
        )
    ]
    out: list[PlacedLine] = []
    in_table = False
    for index, row in enumerate(rows):
        cells = _cells(row, columns, textpage)
        # A row of one cell joins the table only beside it, and only where it cuts at a column.
        is_row = cells is not None and (
            len(row.cells) >= 2
            or in_table
            or (index + 1 < len(rows) and len(rows[index + 1].cells) >= 2)
        )
        if cells is None or not is_row:
            if in_table:
                out.append(_blank(row.lines[0]))
            out.extend(row.lines)
            in_table = False
            continue
        if not in_table and out:
            out.append(_blank(row.lines[0]))
        text = row_line(cells)
        bottoms = [line.bottom for line in row.lines if line.bottom is not None]
        out.append(replace(row.lines[0], text=text, bottom=min(bottoms, default=row.top), row=True))
        in_table = True
    return out


def _next_cell(above: PlacedLine, below: PlacedLine) -> bool:
    """The step from one line to the next goes back up the page and further right, as from a
    cell's last line to the next cell's first."""
    if above.top is None or below.top is None or above.x is None or below.x is None:
        return False
    return below.top > above.top + _SAME and below.x > above.x + _SAME


def _blank(near: PlacedLine) -> PlacedLine:
    """An empty line between a table and the text around it: their paragraphs never join."""
    return PlacedLine("", None, None, None, None) if near.top is None else replace(near, text="")


def _pitch(lines: Sequence[PlacedLine]) -> float | None:
    """The page's usual distance between one line and the next."""
    steps = [
        round(a.top - b.top, 1)
        for a, b in itertools.pairwise(lines)
        if a.top is not None and b.top is not None and a.top > b.top
    ]
    return statistics.median_high(steps) if steps else None


def _rows(lines: Sequence[PlacedLine], textpage: pdfium.PdfTextPage) -> list[_Row]:
    """The lines grouped as cells of rows: a line just below the last one, at its left edge or
    at one of its words' (cells PDFium read as one line), goes on with the cell; one back up at
    the row's first baseline, further right, starts the next cell; anything else starts a new
    row."""
    pitch = _pitch(lines)
    rows: list[_Row] = []
    previous: PlacedLine | None = None
    for line in lines:
        row = rows[-1] if rows else None
        if line.x is None or line.top is None or pitch is None:
            rows.append(_Row([[line]]))
            previous = None
            continue
        if row is not None and previous is not None and previous.top is not None:
            cell_x = row.cells[-1][0].x
            assert cell_x is not None
            start = _row_start(row, line)
            back_up = (
                start is not None and previous.top < line.top - _SAME and line.x > cell_x + _SAME
            )
            below = 0 < previous.top - line.top <= _MAX_CELL_STEP * pitch and (
                abs(line.x - (previous.x or 0.0)) <= _SAME
                or any(abs(line.x - x) <= _SAME for _, x in _words(previous, textpage) or [])
            )
            if back_up:
                if start:  # the lines above the row's first baseline are text before the table
                    rows[-1] = _Row([row.lines[:start]])
                    row = _Row([row.lines[start:]])
                    rows.append(row)
                row.cells.append([line])
                previous = line
                continue
            if below:
                row.cells[-1].append(line)
                previous = line
                continue
        rows.append(_Row([[line]]))
        previous = line
    return rows


def _words(line: PlacedLine, textpage: pdfium.PdfTextPage) -> list[tuple[int, float]] | None:
    """Each word of the line after its first: its offset in the line and its left edge. None
    where a character cannot be placed."""
    import pypdfium2.raw as pdfium_c

    if line.start is None:
        return None
    x, y = ctypes.c_double(), ctypes.c_double()
    words = []
    for i in range(1, len(line.text)):
        if line.text[i - 1].isspace() and not line.text[i].isspace():
            if not pdfium_c.FPDFText_GetCharOrigin(textpage.raw, line.start + i, x, y):
                return None
            words.append((i, x.value))
    return words


def _merged_row(row: _Row, columns: Sequence[float], textpage: pdfium.PdfTextPage) -> bool:
    """A row whose cells all start on its first line (PDFium read them as one line), with the
    rest of its lines further right than the first column: "Parental leave 18 weeks People
    Team after" above "a month's notice"."""
    first = _cut(row.lines[0], columns, textpage)
    return (
        first is not None
        and len(first) >= 2
        and len(row.lines) <= _MAX_CELL_LINES
        and all(line.x is not None and line.x > columns[0] + _SAME for line in row.lines[1:])
    )


def _cell_pitch(rows: Sequence[_Row]) -> float | None:
    """The distance between two lines of one cell, as the table's rows set them."""
    steps = [
        a.top - b.top
        for row in rows
        for cell in row.cells
        for a, b in itertools.pairwise(cell)
        if a.top is not None and b.top is not None
    ]
    return statistics.median_high(steps) if steps else None


def _header_rows(
    row: _Row, columns: Sequence[float], pitch: float | None, textpage: pdfium.PdfTextPage
) -> list[_Row]:
    """The lines of a group of one cell, each a row of its own, but where a line holds several
    cells (a header row PDFium read as one line, "Controls HIPAA Rule Datica Control Inherited")
    below lines of the first column set a cell's line apart ("Administrative"): those lines are
    the wrapped start of its first cell, and one row with it. A heading above the table stands
    further apart and stays a line of its own."""
    out: list[_Row] = []
    lines = row.lines
    begun = 0
    for index, line in enumerate(lines):
        pieces = _cut(line, columns, textpage)
        if pieces is None or len(pieces) < 2 or pitch is None:
            continue
        first = index
        while first > begun and _wraps_into(lines[first - 1], lines[first], columns, pitch):
            first -= 1
        out.extend(_Row([[ln]]) for ln in lines[begun:first])
        out.append(_Row([lines[first : index + 1]]))
        begun = index + 1
    out.extend(_Row([[ln]]) for ln in lines[begun:])
    return out


def _wraps_into(
    above: PlacedLine, below: PlacedLine, columns: Sequence[float], pitch: float
) -> bool:
    """`above` is the line before `below` in one cell of the first column."""
    if above.top is None or below.top is None or above.x is None:
        return False
    return abs(above.x - columns[0]) <= _SAME and abs(above.top - below.top - pitch) <= _SAME / 2


def _row_start(row: _Row, line: PlacedLine) -> int | None:
    """Where the row that `line` is a further cell of begins among `row`'s lines: at its first
    line once it has several cells; before that, at the line of its only cell on `line`'s
    baseline (the lines above it are text before the table, read down at the same left edge)."""
    candidates = row.lines[:1] if len(row.cells) >= 2 else row.lines
    for index, placed in enumerate(candidates):
        if placed.top is not None and line.top is not None and abs(placed.top - line.top) <= _SAME:
            return index
    return None


def _whole_rows(rows: Sequence[_Row]) -> list[_Row]:
    """The rows of several cells, each of a few lines, that start at the table's left edge. A
    table whose cells are centred vertically (NIST's) starts its rows at no one baseline, and
    what looks like a row there starts further right, with a cell of the row before: such a page
    is left as it was."""
    several = [
        row
        for row in rows
        if len(row.cells) >= 2 and max(len(cell) for cell in row.cells) <= _MAX_CELL_LINES
    ]
    if not several:
        return []
    left = min(row.cells[0][0].x or 0.0 for row in several)
    return [row for row in several if abs((row.cells[0][0].x or 0.0) - left) <= _SAME]


def _columns(rows: Sequence[_Row]) -> list[float]:
    """The left edges of a table's columns, from the cells of its rows of several cells; none
    where fewer than two rows have several."""
    if len(rows) < _MIN_ROWS:
        return []
    edges: list[float] = []
    for x in sorted(line.x for row in rows for line in row.lines if line.x is not None):
        if not edges or x - edges[-1] > _SAME:
            edges.append(x)
    return edges if len(edges) >= 2 else []


def _cells(row: _Row, columns: Sequence[float], textpage: pdfium.PdfTextPage) -> list[str] | None:
    """The row's text in each column, or None where it is no table row: its lines cut at no
    column, and it has one cell."""
    texts: list[list[str]] = [[] for _ in columns]
    cut = False
    for line in row.lines:
        pieces = _cut(line, columns, textpage)
        if pieces is None:
            return None
        cut = cut or len(pieces) >= 2
        for column, piece in pieces:
            texts[column].append(piece)
    if len(row.cells) < 2 and not cut:
        return None
    return [" ".join(words) for words in texts]


def _column_of(x: float, columns: Sequence[float]) -> int:
    return (
        max(i for i, edge in enumerate(columns) if edge <= x + _SAME)
        if x >= columns[0] - _SAME
        else 0
    )


def _cut(
    line: PlacedLine, columns: Sequence[float], textpage: pdfium.PdfTextPage
) -> list[tuple[int, str]] | None:
    """The line's pieces, each with its column: cut before a word that starts at a column's left
    edge. None where a character cannot be placed."""
    words = _words(line, textpage)
    if words is None or line.x is None:
        return None
    pieces: list[tuple[int, str]] = []
    column = _column_of(line.x, columns)
    begun = 0
    for i, x in words:
        at = _column_of(x, columns)
        if at > column and abs(x - columns[at]) <= _SAME:
            pieces.append((column, line.text[begun:i].strip()))
            column, begun = at, i
    pieces.append((column, line.text[begun:].strip()))
    return pieces
