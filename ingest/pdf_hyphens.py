"""Which hyphen at a PDF line's end belongs to the word, and which only broke it.

PDFium reports a hyphen that ends a line as a soft hyphen whenever a letter follows on the next
line, and the loader used to drop every one: "multi-factor", "out-of-band" and "role-based" read
as "multifactor", "out-ofband" and "rolebased" (NIST SP 800-63B lost 29 such hyphens, the HIPAA
policies as PDF 19, among them the address "password-reset@datica.com"). Only typesetters that
hyphenate by themselves break words at syllables ("devel-opers"); word processors do not unless
asked, so there a hyphen at a line's end is the text's own.

A hyphen is kept when (in this order):
1. the document spells the word with it elsewhere more often than without it ("multi-factor"),
   and dropped when it spells it joined more often ("developers");
2. the word has another hyphen ("out-of-band"), its second part is capitalised ("Non-Maintainer",
   "Add-ons" is not: that is rule 1 or 3), a part is not letters (a range, "2010-2015"), or it is
   an address or path ("password-reset@datica.com");
3. the PDF was not made by a typesetter that hyphenates by itself (TeX, InDesign, FrameMaker,
   QuarkXPress: its Producer or Creator says which).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import cached_property

# A hyphen PDFium marked at a line's end, with the broken word's two parts around it.
SOFT_HYPHEN = re.compile(r"([^\s\ufffe\x02]*)[\ufffe\x02](?:[ \t]*\r?\n[ \t]*)?([^\s\ufffe\x02]*)")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_LAST_LETTERS = re.compile(r"[^\W\d_]+$")
_FIRST_LETTERS = re.compile(r"^[^\W\d_]+")
_HYPHENATING = ("tex", "indesign", "framemaker", "quark")


def hyphenates(metadata: dict[str, str]) -> bool:
    """Whether the PDF's maker breaks words at syllables by itself, by its Producer/Creator."""
    maker = f"{metadata.get('Producer', '')} {metadata.get('Creator', '')}".casefold()
    return any(name in maker for name in _HYPHENATING)


class LineEndHyphens:
    """Resolves the line-end hyphens of one document's pages, with that document's spelling as
    the evidence (see the module's docstring)."""

    def __init__(self, pages: Sequence[str], typeset: bool) -> None:
        self.pages = pages
        self.typeset = typeset

    @cached_property
    def spelling(self) -> Counter[str]:
        """How often the document writes each word, read only once a hyphen needs it (most
        PDFs a word processor made have no marked hyphen at all)."""
        return Counter(
            word.casefold()
            for text in self.pages
            for word in _WORD.findall(SOFT_HYPHEN.sub(" ", text))
        )

    def resolve(self, text: str) -> str:
        """`text` with each marked hyphen kept as "-" or dropped, and its line break removed."""
        return SOFT_HYPHEN.sub(
            lambda m: m[1] + ("-" if self.keeps(m[1], m[2]) else "") + m[2], text
        )

    def keeps(self, before: str, after: str) -> bool:
        left, right = _LAST_LETTERS.search(before), _FIRST_LETTERS.match(after)
        if left is None or right is None:
            return True  # a number or a symbol on either side: a range or a code, not a syllable
        joined = self.spelling[(left[0] + right[0]).casefold()]
        hyphened = self.spelling[f"{left[0]}-{right[0]}".casefold()]
        if hyphened != joined:
            return hyphened > joined
        if "-" in before or "-" in after or right[0][:1].isupper():
            return True
        if any(mark in before + after for mark in "@/\\_"):
            return True
        return not self.typeset
