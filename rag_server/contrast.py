"""Does a sentence state the opposite of what the question asks about?

An adversarial question changes one attribute of a fact the documents state: "a public clinic"
against "a private clinic", "the best movie in 30 years" against "the worst", "AAL1" against
"AAL2", "2022" against "2024". The answer model reads two nearly identical texts and scores such a
sentence as an answer; the sentence shares every word of the question but one, and holds that
word's opposite. (A negation alone, "will return" against "will not return", is not caught: as a
feature it moved nothing, docs/evaluation.md.)

A sentence contradicts the question when one of the question's words is missing from it and the
sentence holds, in its place:
- a WordNet antonym of it ("public"/"private", "best"/"worst", "more"/"less"; the pairs in
  `models/opposites.txt`, matched after stripping a plain English inflection);
- its negation by prefix ("consistent"/"inconsistent", "able"/"unable");
- another ordinal or rank ("eighth"/"fourth", "tertiary"/"secondary"), month or weekday;
- the same identifier with other digits ("AAL1"/"AAL2"), or another year;
- a bound the other way: the question asks for a maximum ("largest", "at most") and the sentence
  states only a minimum ("at least", "smallest"), or the reverse.
Each part of a hyphenated word counts as a word too: "single-precision" against "double
precision".

The answer model's logit is lowered by a penalty where this fires (rag_server.answerability);
its size was chosen leaving one corpus out (bench/grounding_suite.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag_server.grounding import content_words

OPPOSITES = Path(__file__).parent / "models" / "opposites.txt"
_WORD = re.compile(r"[a-z0-9]+(?:['.-][a-z0-9]+)*")
_ORDINALS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "primary secondary tertiary quaternary".split()
)
# Closed sets whose members exclude each other, like the ordinals: "26 December" against "26
# October", "on Monday" against "on Friday".
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_CLOSED = (_ORDINALS, _MONTHS - {"may", "march"}, _WEEKDAYS)  # "may", "march": verbs too
_NEGATING = ("un", "in", "im", "il", "ir", "non", "dis")
_INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "est", "ly")
_YEAR = re.compile(r"(?:19|20)\d\d")
_DIGITS = re.compile(r"\d+")


class Opposites:
    """Antonym pairs, both ways round: loaded once at start-up (3,237 pairs, 67 kB)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        table: dict[str, set[str]] = {}
        for a, b in pairs:
            table.setdefault(a, set()).add(b)
            table.setdefault(b, set()).add(a)
        self._table = {word: frozenset(others) for word, others in table.items()}

    @classmethod
    def load(cls, path: Path = OPPOSITES) -> Opposites:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [line.split() for line in lines if line and not line.startswith("#")]
        return cls((a, b) for a, b in rows)

    def of(self, word: str) -> frozenset[str]:
        return self._table.get(word, frozenset())


def _members(words: set[str]) -> set[str]:
    """The words that belong to a closed set, a plural weekday read as the day ("fridays")."""
    found = set()
    for word in words:
        if word.removesuffix("s") in _WEEKDAYS:
            found.add(word.removesuffix("s"))
        elif any(word in closed for closed in _CLOSED):
            found.add(word)
    return found


def _forms(word: str) -> set[str]:
    """The word and what it may be inflected from: "decreased" -> decreas, decrease."""
    forms = {word}
    for suffix in _INFLECTIONS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.add(word[: -len(suffix)])
    return forms


def _words(text: str) -> set[str]:
    """The text's words, and each part of a hyphenated one ("single-precision": single,
    precision), so that "double precision" can contradict it."""
    words = set(_WORD.findall(text.lower()))
    return words | {part for word in words if "-" in word for part in word.split("-") if part}


def contradicts(question: str, sentence: str, opposites: Opposites) -> bool:
    """True when a word of the question is missing from the sentence and the sentence holds its
    opposite, or the sentence bounds the other way (the module's docstring lists the kinds)."""
    if _other_bound(question, sentence):
        return True
    asked = _words(question)
    said = _words(sentence)
    # Ordinals and antonyms are often stopwords ("first", "more"): kept beside the content words.
    wanted = (
        {w.lower() for w in content_words(question)}
        | {w for w in asked if opposites.of(w)}
        | _members(asked)
    )
    # Missing only when neither the sentence's words nor their stems hold it: content_words stems
    # ("presented" -> "present"), and a question word the sentence states in another inflection
    # is not missing, whatever opposite stands elsewhere in the sentence.
    said |= _members(said)
    missing = wanted - said - content_words(sentence)
    if not missing:
        return False
    said_forms = set().union(*(_forms(w) for w in said)) if said else set()
    for word in missing:
        if any(opposites.of(form) & said_forms for form in _forms(word)):
            return True
        if any(word in closed and (said & closed) - {word} for closed in _CLOSED):
            return True
        if {p + word for p in _NEGATING} & said or any(
            word.startswith(p) and word[len(p) :] in said for p in _NEGATING
        ):
            return True
        if any(_other_number(word, other) for other in said):
            return True
    return False


# A bound in one direction: "the maximum password length" against "at least 64 characters", "the
# largest font size" against "a minimum font size of 12 points". WordNet pairs "maximum" with
# "minimum" only, not with "at least" or "smallest".
_UPPER = re.compile(
    r"\b(?:maximum|max|largest|longest|highest|greatest|biggest|at most|up to|no more than|"
    r"not (?:to )?exceed)\b"
)
_LOWER = re.compile(
    r"\b(?:minimum|min|smallest|shortest|lowest|fewest|at least|no less than|no fewer than|"
    r"not less than)\b"
)


def _other_bound(question: str, sentence: str) -> bool:
    """The question asks for a bound one way and the sentence states only one the other way."""
    q, s = question.lower(), sentence.lower()
    for asked, other in ((_UPPER, _LOWER), (_LOWER, _UPPER)):
        if asked.search(q) and not other.search(q) and other.search(s) and not asked.search(s):
            return True
    return False


def _other_number(word: str, other: str) -> bool:
    """The same identifier with other digits ("aal1"/"aal2"), or another year ("2022"/"2024")."""
    if word == other:
        return False
    if _YEAR.fullmatch(word) and _YEAR.fullmatch(other):
        return True
    has_letter = any(c.isalpha() for c in word)
    has_digit = any(c.isdigit() for c in word)
    return has_letter and has_digit and _DIGITS.sub("#", word) == _DIGITS.sub("#", other)


def penalised(logits: Sequence[float], contradicted: Sequence[bool], penalty: float) -> list[float]:
    """The answer model's logits, each lowered by `penalty` where its sentence contradicts the
    question: one rule for the server (rag_server.answerability) and for the suite that chooses
    the penalty on collected logits (bench/grounding_suite.py), so the two cannot drift apart."""
    return [logit - penalty * flag for logit, flag in zip(logits, contradicted, strict=True)]
