"""How a list item's marker is written, shared by the loaders that know their lists (DOCX, HTML):
"•" for every bullet, and numbers in the list's own style ("3.", "b.", "iv."), so that a
reference to "item 3 above" finds its item, and a bulleted item reads as an item whatever its
source format (the grounding's list markers, `rag_server/grounding.py`)."""

from __future__ import annotations

import re

BULLET = "•"
# Every bullet a loader writes or keeps at a line's start: its own "•", Markdown's "-" and "*",
# and the dashes, circles and squares word processors set at deeper levels, as PDF text shows
# them. The PDF reader starts an item's line at one; the grounding quotes an item without it.
BULLETS = "•◦▪‣*–-"


def item_marker(extra_bullets: str = "") -> re.Pattern[str]:
    """A list item's marker at the start of a line, for readers that must tell an item from a
    heading or a paragraph's line: a bullet, or a number or letter before "." or ")" ("3.",
    "(b)"). Numbers stop at three digits, so a line that opens with a year ("2024. The…") is
    no item. `extra_bullets`: what one format also sets before an item (plain text's "+")."""
    bullets = re.escape(BULLETS + extra_bullets)
    return re.compile(rf"\s*(?:[{bullets}]|\(?\d{{1,3}}[.)]|\(?[a-z][.)])\s")


_ROMAN = (
    (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
    (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
)  # fmt: skip
# Beyond these, letters ("zzz…") and roman numerals ("mmm…") grow with the number: a hostile
# start value would write a marker thousands of characters long, so larger numbers are decimal.
_MAX_LETTERS = 26 * 30
_MAX_ROMAN = 3999
# HTML's <ol type>, as Word's numFmt names.
HTML_TYPES = {"1": "decimal", "a": "lowerLetter", "A": "upperLetter", "i": "lowerRoman",
              "I": "upperRoman"}  # fmt: skip


def _roman(n: int) -> str:
    out = []
    for value, letters in _ROMAN:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


def format_number(n: int, fmt: str) -> str:
    """`n` as Word writes it in format `fmt` (its numFmt names); formats not listed here, and
    numbers out of a format's range, fall back to decimal."""
    if fmt in ("lowerLetter", "upperLetter") and 0 < n <= _MAX_LETTERS:
        # Word goes a..z, then aa, bb, .. zz: the letter repeated (CSS counts aa, ab, ..: a
        # lettered list that long is rare enough to write Word's way for both).
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman") and 0 < n <= _MAX_ROMAN:
        numeral = _roman(n)
        return numeral.upper() if fmt == "upperRoman" else numeral
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt == "none":
        return ""
    return str(n)
