"""Words whose full stop ends no sentence, shared by the PDF reader (a sentence carried back over
a page break ends at its first full stop) and the grounding's sentence splitter (a quote is one
sentence), so that both cut a text at the same places."""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    """e.g i.e etc ltd inc co no vs cf approx dept fig st mr mrs ms dr prof sec ch art para""".split()
)
# Letters each with its full stop: "U.S.", "a.m.", "p.m.", "N.B.".
_INITIALISM = re.compile(r"(?:[a-z]\.)+[a-z]")
_OPENERS = "(\"'“‘["


def ends_no_sentence(word: str) -> bool:
    """Whether the full stop after `word` ("e.g", "U.S", "J", with or without that full stop)
    belongs to an abbreviation or an initial rather than ending a sentence."""
    core = word.rstrip(".").lstrip(_OPENERS).lower()
    return (
        core in ABBREVIATIONS
        or (len(core) == 1 and core.isalpha())
        or bool(_INITIALISM.fullmatch(core))
    )
