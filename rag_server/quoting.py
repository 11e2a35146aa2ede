"""Verbatim quotes as answers: the source sentences that best answer the question, ranked either
by embedding similarity plus word overlap, or by the trained answer model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rag_core.access import UNRESTRICTED, Access
from rag_core.embedding import Embedder
from rag_core.records import Hit
from rag_server.answerability import Answerability, sentence_passages
from rag_server.grounding import (
    Policy,
    Quote,
    Verified,
    best_quote,
    extractive,
    overlap_scores,
    quotable,
    repeats,
)
from rag_server.retrieval import KeywordSnapshot

SentenceScorer = Callable[[str, list[str]], list[float]]


class SimilarityQuoter:
    """Rank candidate sentences: embedding cosine with the question, plus the IDF-weighted share
    of the question's words they contain (chosen on the dev split: bench/, README)."""

    def __init__(self, embedder: Embedder, policy: Policy, lexical_weight: float) -> None:
        self.embedder = embedder
        self.policy = policy
        self.lexical_weight = lexical_weight

    def scorer(
        self, question: str, keyword: KeywordSnapshot, access: Access = UNRESTRICTED
    ) -> SentenceScorer:
        """The IDF is over what `access` may read in `keyword`, so unreadable documents move no
        score."""
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        weight = self.lexical_weight
        idf = keyword.idf(access)

        def score(_: str, sentences: list[str]) -> list[float]:
            cosine = self.embedder.embed_texts(sentences) @ query
            overlap = overlap_scores(question, sentences, idf)
            return [float(c) + weight * o for c, o in zip(cosine, overlap, strict=True)]

        return score

    def extract(
        self,
        question: str,
        hits: list[Hit],
        keyword: KeywordSnapshot,
        access: Access,
        min_score: float,
    ) -> Verified:
        """The best source sentences, quoted verbatim, if they score `min_score`."""
        return extractive(
            question,
            hits,
            [h.score for h in hits],
            self.policy,
            score=self.scorer(question, keyword, access),
            min_score=min_score,
        )


class AnswerModelQuoter:
    """The answer model reads the question with every candidate sentence and gives the chance
    that the sentence answers it; the quote is the best sentences at the answer threshold."""

    def __init__(self, model: Answerability, policy: Policy, threshold: float) -> None:
        self.model = model
        self.policy = policy
        self.threshold = threshold

    def quote(self, question: str, hits: list[Hit]) -> tuple[Verified, list[tuple[Hit, Quote]]]:
        """The extractive answer at the answer threshold, and every passage with its best-scoring
        sentence, best first (the prompt order, and the refusal's closest passages)."""
        memo: dict[str, float] = {}
        judge = self.model
        passages = sentence_passages(hits)

        def score(q: str, sentences: list[str]) -> list[float]:
            todo = [s for s in dict.fromkeys(sentences) if s not in memo]
            if todo:
                context = [passages.get(s, (0.0, s)) for s in todo]
                memo.update(zip(todo, judge.probabilities(q, todo, context), strict=True))
            return [memo[s] for s in sentences]

        relevance = [h.score for h in hits]
        spans = [quotable(hit, self.policy) for hit in hits]  # once, for the answer and the rest
        quoted = extractive(question, hits, relevance, self.policy, score, self.threshold, spans)
        best: list[tuple[float, int, Quote]] = []
        for n, (hit, found) in enumerate(zip(hits, spans, strict=True), start=1):
            text = hit.chunk.text
            scored = [span for span in found if text[span[0] : span[1]] in memo]
            if scored:  # its sentence closest to answering, quoted as an answer would quote it
                lo, hi, begin, end = max(scored, key=lambda span: memo[text[span[0] : span[1]]])
                start = hit.chunk.start
                quote = Quote(n, hit, start + begin, start + end, text[begin:end])
                best.append((memo[text[lo:hi]], -n, quote))
            else:
                best.append((-1.0, -n, best_quote(n, hit, question)))
        best.sort(key=lambda item: (item[0], item[1]), reverse=True)
        ranked: list[tuple[Hit, Quote]] = []
        for _, _, quote in best:
            if not any(repeats(quote.text, q.text) for _, q in ranked):  # chunks overlap
                ranked.append((quote.hit, quote))
        return quoted, ranked
