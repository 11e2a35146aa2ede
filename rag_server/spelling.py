"""Misspelt question words, corrected towards the words of the documents.

"how many dayz of paid anual leave do i get per yeer?" was refused while the example leave policy
answered it: the answer model reads "dayz", "anual" and "yeer" as unknown word pieces, and BM25
finds none of them. A word is corrected only when it is in neither an English dictionary nor the
documents the caller may read, and then only to a word one edit away (insert, delete, replace or
swap two letters) that those documents use in a passage together with another of the question's
words; the one that shares the most passages with them. So a correction can only bring the
question closer to the documents' own words, and a word only documents the caller may not read
contain is never proposed (it would tell the caller they hold it).

Terms of art are the risk: "systemd", "dgit", "mypy" and "compat" are in no dictionary, and the
documents may not use them (then the honest answer is a refusal) while using "system", "git",
"pypy" or "compare". Typing slips rarely change a word's first letter, and a term of art is often
a word and one letter more ("systemd", "dgit"), so a first letter is never changed and a known
word with one letter more is left as asked. The rest is narrowed by context: the corrected word
must share a passage with one of the question's two rarest words, the ones it is about
(docs/evaluation.md, "Misspelt questions").

The dictionary and the one-edit candidates are pyspellchecker's (MIT; Peter Norvig's method), so
the list of English words ships with the package and nothing is fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from rag_server.grounding import STOPWORDS, content_words

if TYPE_CHECKING:
    from spellchecker import SpellChecker

# Lower-case words only, four letters or more: a capitalised word is a name or an acronym, and
# shorter words have too many neighbours one edit away to pick from.
_WORD = re.compile(r"(?<![\w'’./-])[a-z]{4,}(?![\w'’/-])")

# How many of the question's rarest words say what it is about (the context a correction needs).
RAREST = 2
# Rows: the chunks (that the caller may read) a content word occurs in (KeywordSnapshot.rows).
Rows = Callable[[str], np.ndarray]


class Speller:
    """Corrects a question's misspelt words; the dictionary loads once at start (0.5 s, 40 MB)."""

    def __init__(self, checker: SpellChecker) -> None:
        self.checker = checker

    @classmethod
    def load(cls) -> Speller:
        from spellchecker import SpellChecker

        return cls(SpellChecker(language="en", distance=1))

    def correct(self, question: str, rows: Rows) -> str:
        """`question` with each misspelt word replaced by the documents' word."""
        if all(w in STOPWORDS or w in self.checker for w in _WORD.findall(question)):
            return question  # every word is English: the usual question costs a lookup a word
        context = sorted((r for r in map(rows, content_words(question)) if len(r)), key=len)
        if not context:
            return question
        # The passages holding one of the question's two rarest words: the ones it is about.
        near = np.unique(np.concatenate(context[:RAREST]))

        def replace(match: re.Match[str]) -> str:
            return self.correction(match.group(0), rows, near) or match.group(0)

        return _WORD.sub(replace, question)

    def correction(self, word: str, rows: Rows, near: np.ndarray) -> str | None:
        """The documents' word one edit from `word` that shares the most passages in `near`, if
        `word` is misspelt and one shares any."""
        if self._known(word, rows) or (len(word) > 4 and self._known(word[:-1], rows)):
            return None  # spelt right, or a known word and one letter more ("systemd")
        found = []
        for candidate in self.checker.edit_distance_1(word):
            if not candidate.isalpha() or candidate[0] != word[0]:
                continue
            shared = np.intersect1d(_rows(candidate, rows), near, assume_unique=True).size
            if shared:
                english = self.checker[candidate]  # 0: not an English word (a term of art)
                same = len(candidate) == len(word)
                found.append((shared, english > 0, same, english, candidate))
        # Most shared passages. Among forms of one word (they share the same passages): an
        # English word ("options", not "optiones"); then one as long as the typed word ("dayz"
        # reads "days", not "day"); then the more common; then alphabetical, so the same question
        # always reads the same way.
        best = min(found, key=lambda f: (-f[0], -f[1], -f[2], -f[3], f[4])) if found else None
        return best[4] if best else None

    def _known(self, word: str, rows: Rows) -> bool:
        return word in STOPWORDS or word in self.checker or bool(len(_rows(word, rows)))


_NONE = np.zeros(0, dtype=np.int64)


def _rows(word: str, rows: Rows) -> np.ndarray:
    stems = content_words(word)
    return rows(next(iter(stems))) if len(stems) == 1 else _NONE
