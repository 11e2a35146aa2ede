"""What a question gets back: the Answer, made either from a verified answer or as a refusal,
and counted by status (metrics) as it is made."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag_core.records import Hit
from rag_server import metrics
from rag_server.generation import Generator
from rag_server.grounding import AnswerStatus, Quote, Verified, best_quote, widened
from rag_server.timing import ms_since


@dataclass
class Answer:
    answer: str
    status: AnswerStatus
    citations: list[Quote]
    related: list[Quote]
    removed_sentences: int
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Why generation ended: "stop", "length", "deadline" (the verified part of what was written
    # in time), "cancelled"; None when the model was not called.
    finish_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The question as it was searched for, where that differs from what was asked (a long
    # message's asking sentence; misspelt words read as the documents' words).
    read_as: str | None = None


NOT_ENGLISH = (
    "The question does not seem to be in English, and the search model reads English only, so "
    "the documents could not be searched for it. Please ask in English."
)


class Replies:
    """Makes the Answer of a finished request, stamped with the total time and the model's name."""

    def __init__(self, generator: Generator, refusal: str) -> None:
        self.generator = generator
        self.refusal_text = refusal

    def verified(self, verified: Verified, timings: dict[str, float], began: float) -> Answer:
        """The answer that survived verification (written, or quoted verbatim)."""
        timings["total"] = ms_since(began)
        metrics.ANSWERS.labels(verified.status).inc()
        return Answer(
            verified.answer,
            verified.status,
            verified.citations,
            [],
            verified.removed_sentences,
            self.generator.name,
            timings_ms=timings,
        )

    def refusal(
        self,
        question: str,
        hits: list[Hit],
        timings: dict[str, float],
        began: float,
        removed: int = 0,
        ranked: list[tuple[Hit, Quote]] | None = None,
        reason: str | None = None,
    ) -> Answer:
        """A fixed refusal, with the nearest passages as `related` (never as citations): when the
        scorer `ranked` them, its closest sentence first, then the passages retrieval ranked
        highest among the rest; else each passage's best word match. Each is shown with the
        sentences around it (`widened`)."""
        if ranked:
            nearest = closest(ranked)
        else:
            nearest = [best_quote(n, hit, question) for n, hit in enumerate(hits[:3], start=1)]
        related = [widened(quote) for quote in nearest]
        timings["total"] = ms_since(began)
        metrics.ANSWERS.labels("insufficient_evidence").inc()
        return Answer(
            reason or self.refusal_text,
            "insufficient_evidence",
            [],
            related,
            removed,
            self.generator.name,
            timings_ms=timings,
        )


def closest(ranked: list[tuple[Hit, Quote]], shown: int = 3) -> list[Quote]:
    """The passages a refusal points to: the one whose sentence came closest to answering, then
    the others in retrieval's order (`Quote.n`). Below the threshold the answer model's order
    after its first choice is weak; retrieval's is a second opinion. Over the 184 answerable
    questions the suite's seven corpora refuse, the three shown quote the answer for 120, against
    110 when all three follow the answer model (docs/evaluation.md)."""
    first, *rest = (quote for _, quote in ranked)
    return [first, *sorted(rest, key=lambda quote: quote.n)[: shown - 1]]
