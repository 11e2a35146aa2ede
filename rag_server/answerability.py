"""Does a sentence answer the question? The cross-encoder's reading, and cheap signals beside it,
combined by a small logistic model into one probability.

The signals: the answer model's logit; the embedding cosine of question and sentence; the
passage's retrieval cosine; the share of the question's content words in the sentence; the share
of the question's names, numbers and identifiers in the passage (an adversarial question changes
exactly one of those); and whether the sentence holds what the question asks for (an amount, a
count, a duration, a date). Where the sentence states the opposite of what the question asks
(rag_server.contrast), the answer model's logit is lowered by a fixed penalty first. None depends
on corpus statistics, so nothing about documents a caller may not read can move a caller's
answer. The weights and the penalty were fitted leaving one corpus out
(bench/grounding_suite.py) and ship beside the model (combiner.json).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_core.embedding import Embedder
from rag_core.store import Hit
from rag_server.answer_scorer import PACKAGED, AnswerScorer
from rag_server.contrast import Opposites, contradicts, penalised
from rag_server.grounding import (
    base_word,
    content_words,
    critical_tokens,
    overlap_scores,
    passage_spans,
    tokens,
)

FEATURES = ("logit", "cosine", "passage", "coverage", "names_in_passage", "type_match")

_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|sixty|hundred|thousand|million|billion|dozen|half|once|twice"
)
_NUMBER = rf"(?:\d[\d.,]*|\b(?:{_NUMBER_WORDS})\b)"
_UNIT = r"(?:second|minute|hour|day|business day|week|month|year|semester|quarter|decade)s?"
_MONTH = (
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAY = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# "When" asks for a time where a question's verb follows it ("When is…", "When do I…", "by when
# must…", "when to file…"); elsewhere it is a conjunction ("Which list should I ask when I'm in
# doubt…?", "How many bits does the salt need to be when we store…?"), and the question asks for
# what its own wh-word asks for.
_ASKS_WHEN = (
    r"\bwhen(?:'s\b| (?:is|are|was|were|do|does|did|will|would|can|could|should|must|has|have|had"
    r"|shall|may|might|am|to)\b)"
)
# What a question asks for, tried in order: the first that matches wins.
_QUESTION_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "duration",
        re.compile(r"\bhow long\b|\bhow many (?:days|weeks|months|years|hours|minutes)\b"),
    ),
    (
        "date",
        re.compile(
            rf"{_ASKS_WHEN}|\bwhat (?:year|date|day|month|time)\b|\bwhich (?:year|date|day|month)\b"
        ),
    ),
    (
        "amount",
        re.compile(
            r"\bhow much\b|\bwhat (?:percentage|percent)\b|\bhow (?:big|large|high|low|fast|old|far)\b"
        ),
    ),
    ("count", re.compile(r"\bhow many\b|\bwhat number of\b")),
)
_HAS_TYPE: dict[str, re.Pattern[str]] = {
    "duration": re.compile(
        rf"{_NUMBER}[\s-]*(?:calendar |working |business |consecutive )?{_UNIT}\b|\b(?:annual|daily|weekly|monthly|yearly)\b"
    ),
    "date": re.compile(
        rf"\b(?:{_MONTH}|{_WEEKDAY})\b|\b1[5-9]\d\d\b|\b20\d\d\b|\d{{1,2}}(?:st|nd|rd|th)\b|\b\d{{1,2}}[:/.]\d{{2}}\b|\b(?:{_NUMBER})\s+{_UNIT}\b|\b(?:before|after|within|until|by|during|once|whenever|immediately|if)\b"
    ),
    "amount": re.compile(
        rf"[$€£¥%]|{_NUMBER}\s*(?:%|percent|dollars?|euros?|pounds?|usd|eur|gb|mb|kb|tb|characters?|km|miles?|kilometres?|kilometers?)|{_NUMBER}"
    ),
    "count": re.compile(_NUMBER),
}


def question_type(question: str) -> str | None:
    """The kind of answer the question asks for, when its wording says so plainly."""
    low = question.lower()
    for name, pattern in _QUESTION_TYPES:
        if pattern.search(low):
            return name
    return None


def type_match(kind: str | None, sentence: str) -> float:
    """+1 the sentence holds that kind of answer, -1 it cannot, 0 the question's kind is open."""
    if kind is None:
        return 0.0
    return 1.0 if _HAS_TYPE[kind].search(sentence.lower()) else -1.0


# A question that asks how many, how much or how long is answered by a number: a sentence that
# states none ("The CSP MAY set a time limit after which…" for "After how many days…?") cannot
# answer it, however close its words (docs/evaluation.md, "A question that asks for a number").
_QUANTITIES = frozenset({"duration", "count", "amount"})


def can_answer(kind: str | None, sentence: str) -> bool:
    """False where the question asks for a quantity (`question_type`) and the sentence states no
    number at all, in digits or in words; the answer-type feature only weighs against it."""
    return kind not in _QUANTITIES or _HAS_TYPE["count"].search(sentence.lower()) is not None


def coverage(question: str, sentence: str) -> float:
    """Share of the question's content words (stemmed) the sentence contains; unweighted, so it
    depends on nothing but the two texts."""
    return overlap_scores(question, [sentence])[0]


def names_in(question: str, passage: str) -> float:
    """Share of the question's names, numbers and identifiers found in the passage (1 when the
    question has none): "the Massachusetts programme" against a passage about Oregon's. A name
    in the singular or the plural is one name ("UID", "UIDs"), as is one with its possessive."""
    wanted = {_unaccented(t) for t in critical_tokens(question)}
    if not wanted:
        return 1.0
    said = tokens(_unaccented(passage))
    have = set(said) | {base_word(t) for t in said} | content_words(passage)
    return sum(1 for t in wanted if {t, t.rstrip("s"), f"{t}s"} & have) / len(wanted)


def _unaccented(text: str) -> str:
    """Without accents: a question typed on a plain keyboard names "L'Americain", the article
    "L'Américain"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Combiner:
    """p = sigmoid(bias + weights . features): one probability per sentence. `contrast_penalty`
    is subtracted from the answer model's logit where the sentence states the opposite of what
    the question asks (chosen with the weights, leaving one corpus out)."""

    weights: tuple[float, ...]
    bias: float
    contrast_penalty: float = 0.0

    @classmethod
    def load(cls, path: Path) -> Combiner:
        spec = json.loads(path.read_text())
        if tuple(spec["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on features {spec['features']}, not {FEATURES}")
        return cls(
            tuple(float(w) for w in spec["weights"]),
            float(spec["bias"]),
            float(spec.get("contrast_penalty", 0.0)),
        )

    def probability(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


def sentence_passages(hits: Sequence[Hit]) -> dict[str, tuple[float, str]]:
    """Each sentence of the passages -> its best passage's (retrieval cosine, title and text):
    the context the passage features read."""
    passages: dict[str, tuple[float, str]] = {}
    for hit in hits:
        text = hit.chunk.text
        for lo, hi in passage_spans(hit):
            known = passages.get(text[lo:hi])
            if known is None or hit.score > known[0]:
                passages[text[lo:hi]] = (hit.score, f"{hit.chunk.title}\n{text}")
    return passages


class Answerability:
    """The answer model, the embedder and the combiner together: the probability that each
    candidate sentence answers the question. Loaded once at start-up, like the other models."""

    def __init__(
        self,
        scorer: AnswerScorer,
        embedder: Embedder,
        combiner: Combiner,
        opposites: Opposites | None = None,
    ) -> None:
        self.scorer = scorer
        self.embedder = embedder
        self.combiner = combiner
        self.opposites = opposites if opposites is not None else Opposites.load()
        self.identity = scorer.identity

    @classmethod
    def load(cls, embedder: Embedder, model_dir: Path | None = None) -> Answerability:
        directory = model_dir or PACKAGED
        return cls(
            AnswerScorer.load(directory), embedder, Combiner.load(directory / "combiner.json")
        )

    def contradicted(self, question: str, sentences: Sequence[str]) -> list[bool]:
        """Which sentences state the opposite of what the question asks (rag_server.contrast)."""
        return [contradicts(question, sentence, self.opposites) for sentence in sentences]

    def features(
        self, question: str, sentences: Sequence[str], passages: Sequence[tuple[float, str]]
    ) -> list[tuple[float, ...]]:
        """FEATURES for each sentence; `passages[i]` is sentence i's passage: (retrieval cosine,
        text)."""
        if not sentences:
            return []
        penalty = self.combiner.contrast_penalty
        logits = penalised(
            self.scorer.logits(question, sentences),
            self.contradicted(question, sentences) if penalty else [False] * len(sentences),
            penalty,
        )
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        cosines = self.embedder.embed_texts(list(sentences)) @ query
        kind = question_type(question)
        return [
            (
                logit,
                float(cos),
                passage_score,
                coverage(question, sentence),
                names_in(question, passage),
                type_match(kind, sentence),
            )
            for sentence, logit, cos, (passage_score, passage) in zip(
                sentences, logits, cosines, passages, strict=True
            )
        ]

    def probabilities(
        self, question: str, sentences: Sequence[str], passages: Sequence[tuple[float, str]]
    ) -> list[float]:
        """The probability that each sentence answers the question: the combiner's, or 0 where
        the sentence cannot hold the kind of answer asked for (`can_answer`)."""
        kind = question_type(question)
        features = self.features(question, sentences, passages)
        return [
            self.combiner.probability(f) if can_answer(kind, sentence) else 0.0
            for sentence, f in zip(sentences, features, strict=True)
        ]
