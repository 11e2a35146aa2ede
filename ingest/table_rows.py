"""How every reader writes a table: a row a line, its cells joined by " | ".

Why one rule: a question about one row ("Annual leave | 27 days") is answered by that line
whatever format the table came in (DOCX, PDF, HTML, Markdown), and a passage, a quote and the
embedder read a row whole rather than each cell as a paragraph of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

CELL_SEPARATOR = " | "


def row_line(cells: Iterable[str]) -> str:
    """One table row as one line of text."""
    return CELL_SEPARATOR.join(cells)
