"""A heading as it stands on a page against the title an outline gives it: "4.1 Mailing lists"
and "RESOURCES FOR DEBIAN MEMBERS" are the bookmarks "Mailing lists" and "Resources for Debian
Members". Shared by the PDF reader, which places each bookmark at its line, and the grounding,
which must know that whole line for the heading it is."""

from __future__ import annotations

import re

# A heading's number: "2.1 ", "3. ", "IV. ", "A. " (a letter only with its full stop: "A Guide").
SECTION_NUMBER = re.compile(r"(?:(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.)[ \t]+)")
LEADING_NUMBER = re.compile(f"^{SECTION_NUMBER.pattern}")


def title_key(line: str) -> str:
    """A heading as compared with a line: no section number ("2.1"), case or spacing."""
    return " ".join(LEADING_NUMBER.sub("", line.strip()).split()).casefold()
