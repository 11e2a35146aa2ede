"""Orchestration: retrieve -> evidence gate -> prompt -> generate -> verify -> (extract) -> respond.

No web imports. Nothing the model writes reaches the caller unless the verifier found it in a
retrieved passage; when nothing survives, the answer is a verbatim quote or a refusal. Each step
has its own module (evidence, writing, quoting, answers, stream_bridge); the service puts them in
order, holds the generation queue around the CPU work, and times the steps.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import anyio

from rag_core.access import UNRESTRICTED, Access
from rag_core.embedding import Embedder
from rag_core.records import Hit
from rag_core.settings import Settings
from rag_server import metrics
from rag_server.answerability import Answerability
from rag_server.answers import NOT_ENGLISH, Answer, Replies
from rag_server.catalog import Catalog, Corpus
from rag_server.evidence import weigh
from rag_server.generation import GenerationGate, Generator, Place
from rag_server.grounding import Policy, Verified, verify
from rag_server.language import focus, reads_as_english
from rag_server.quoting import AnswerModelQuoter, SentenceScorer, SimilarityQuoter
from rag_server.retrieval import Filters, KeywordSnapshot
from rag_server.spelling import Speller
from rag_server.stream_bridge import OnSources, OnToken, stream_events
from rag_server.timing import ms_since
from rag_server.writing import Writer

# Answer is the service's reply type; its users import it from here.
__all__ = ["Answer", "RagService"]


@dataclass
class _Request:
    """One question on its way through the steps: what they all read, and the timings they add."""

    question: str
    corpus: Corpus  # resolved once per request
    keyword: KeywordSnapshot  # read once per request: each read asks the store for its revision
    access: Access
    on_sources: OnSources | None
    on_token: OnToken | None
    timings: dict[str, float]
    began: float


class RagService:
    """Everything a request needs, loaded once and passed in."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        catalog: Catalog,
        generator: Generator,
        gate: GenerationGate,
        scorer: Answerability | None = None,
        speller: Speller | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalog = catalog
        self.generator = generator
        self.gate = gate
        # The trained answer model; None: the previous cosine + IDF overlap with its two-level gate.
        self.scorer = scorer
        # Misspelt question words, read as the documents' words; None: questions as asked.
        self.speller = speller
        # The default embedder (and the answer model) read English only.
        self.english_only = settings.embedder.english_only
        g = settings.grounding
        self.policy = Policy(g.min_coverage, g.min_relevance, g.refusal)
        mode = g.answer_mode
        if mode == "auto":
            mode = "extract" if generator.style == "base" else "generate"
        self.answer_mode = mode
        self.writer = Writer(generator, settings)
        self.quoter = SimilarityQuoter(embedder, self.policy, g.lexical_weight)
        self.answer_model = (
            None if scorer is None else AnswerModelQuoter(scorer, self.policy, g.answer_threshold)
        )
        self.replies = Replies(generator, g.refusal)

    async def corpus(self, collection: str | None) -> Corpus:
        """The named collection (default: the configured one); opening one reads the store."""
        return await anyio.to_thread.run_sync(self.catalog.get, collection)

    async def collections(self) -> list[str]:
        return await anyio.to_thread.run_sync(self.catalog.names)

    async def search(
        self,
        query: str,
        top_k: int,
        filters: Filters,
        collection: str | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """Embedding, BM25 and the store call block, so they run in a worker thread. `timings`
        receives embed_query/dense/keyword/fuse, and `retrieve` for the whole (thread hop too)."""
        corpus = await self.corpus(collection)
        return await self._retrieve(corpus, query, top_k, filters, timings)

    @staticmethod
    async def _retrieve(
        corpus: Corpus,
        query: str,
        top_k: int,
        filters: Filters,
        timings: dict[str, float] | None,
        keyword: KeywordSnapshot | None = None,
    ) -> list[Hit]:
        """Retrieval in a worker thread; `keyword`: the snapshot the request holds, if any."""
        spent = timings if timings is not None else {}
        began = time.perf_counter()
        hits = await anyio.to_thread.run_sync(
            corpus.retriever.retrieve, query, top_k, filters, spent, keyword
        )
        spent["retrieve"] = ms_since(began)
        return hits

    async def ask(
        self,
        question: str,
        filters: Filters,
        top_k: int | None = None,
        collection: str | None = None,
        on_sources: OnSources | None = None,
        on_token: OnToken | None = None,
        place: Place | None = None,
    ) -> Answer:
        """The verified answer. The hooks serve streaming: `on_sources` gets the passages shown to
        the model; `on_token` (called from the worker thread) each raw piece, False to stop;
        `place` the queue place a stream took before its 200, given back here at the latest (the
        generation's slot gives it back as soon as the model is done)."""
        try:
            return await self._ask(
                question, filters, top_k, collection, on_sources, on_token, place
            )
        finally:
            if place is not None:
                place.release()  # a no-op when the slot gave it back already

    async def _ask(
        self,
        question: str,
        filters: Filters,
        top_k: int | None,
        collection: str | None,
        on_sources: OnSources | None,
        on_token: OnToken | None,
        place: Place | None,
    ) -> Answer:
        began = time.perf_counter()
        corpus = await self.corpus(collection)
        timings: dict[str, float] = {}
        if self.english_only and not reads_as_english(question):
            return self.replies.refusal(question, [], timings, began, reason=NOT_ENGLISH)
        started = time.perf_counter()
        keyword, read = await anyio.to_thread.run_sync(
            self._snapshot_and_read, corpus, question, filters.access
        )
        timings["read"] = ms_since(started)
        request = _Request(
            read, corpus, keyword, filters.access, on_sources, on_token, timings, began
        )
        answer = await self._answer(request, filters, top_k, place)
        if read != question:
            answer.read_as = read
        return answer

    def _snapshot_and_read(
        self, corpus: Corpus, question: str, access: Access
    ) -> tuple[KeywordSnapshot, str]:
        """In a worker thread: the keyword snapshot asks the store for its revision (HTTP in http
        mode). It is taken once, first (it also reopens a store another process moved), and
        every later step of the request reads the same one."""
        keyword = corpus.keyword.current()
        return keyword, self.read(question, keyword, access)

    def read(self, question: str, keyword: KeywordSnapshot, access: Access) -> str:
        """The question as it is searched for: a long message's asking sentence, its misspelt
        words read as the documents' words (those `access` may read in `keyword`)."""
        question = focus(question)
        if self.speller is not None:
            question = self.speller.correct(question, keyword.rows(access))
        return question

    async def _answer(
        self,
        request: _Request,
        filters: Filters,
        top_k: int | None,
        place: Place | None,
    ) -> Answer:
        question, timings, began = request.question, request.timings, request.began
        on_sources = request.on_sources
        top = top_k or self.settings.retrieval.top_k
        hits = await self._retrieve(
            request.corpus, question, top, filters, timings, request.keyword
        )
        if not hits:
            metrics.EMPTY_RETRIEVALS.inc()
        started = time.perf_counter()
        evidence = weigh(hits, self.settings.grounding)
        timings["gate"] = ms_since(started)
        if evidence.refused:
            return self.replies.refusal(question, hits, timings, began)
        if self.answer_model is not None:
            return await self._ask_scored(self.answer_model, request, hits, place)
        if evidence.weak or self.answer_mode == "extract":
            # Weak evidence is never handed to the model to write from.
            if on_sources is not None:
                await on_sources(hits)
            # Quoting is CPU work too (embedding every candidate sentence): the same slot and
            # bounded queue as generation, so overload is a 503 rather than ever slower answers.
            async with self._queued(place, timings):
                return await self._conclude(request, hits, None, evidence.quote_floor)
        return await self._generate(request, hits, place)

    async def _ask_scored(
        self, model: AnswerModelQuoter, request: _Request, hits: list[Hit], place: Place | None
    ) -> Answer:
        """The answer model reads the question with every candidate sentence: the best ones, if
        they answer it (score >= answer_threshold), are the quote; otherwise the answer is the
        refusal, pointing to the sentences that came closest. An instruction-tuned model writes
        only when a sentence answers, from the passages in the order the scorer ranks them."""
        # Scoring is CPU work like generation: the same slot and bounded queue, held through the
        # generation too, so a stream that has started is never turned away half-way.
        async with self._queued(place, request.timings):
            started = time.perf_counter()
            quoted, ranked = await anyio.to_thread.run_sync(model.quote, request.question, hits)
            request.timings["extract"] = ms_since(started)
            if quoted.status == "insufficient_evidence":
                return self.replies.refusal(
                    request.question, hits, request.timings, request.began, ranked=ranked
                )
            if self.answer_mode == "extract":
                if request.on_sources is not None:
                    await request.on_sources(hits)
                return await self._conclude(request, hits, quoted)
            ranked_hits = [h for h, _ in ranked]
            return await self._generate(request, ranked_hits, None, fallback=quoted)

    async def _generate(
        self,
        request: _Request,
        hits: list[Hit],
        place: Place | None,
        fallback: Verified | None = None,
    ) -> Answer:
        """The model writes from the best passages; its verified sentences are the answer. With
        `fallback` (the scored quote), the caller holds the slot already, and nothing verified
        falls back to that quote."""
        timings = request.timings
        started = time.perf_counter()
        rendered = self.writer.fit(request.question, hits)
        timings["prompt"] = ms_since(started)
        if request.on_sources is not None:
            await request.on_sources(rendered.sources)
        hold = nullcontext() if fallback is not None else self._queued(place, timings)
        generation = await self.writer.write(rendered, hold, request.on_token, timings)

        started = time.perf_counter()
        sources = rendered.sources
        verified = verify(generation.text, sources, [h.score for h in sources], self.policy)
        timings["verify"] = ms_since(started)
        if verified.status != "answered" and fallback is not None:
            fallback.removed_sentences = verified.removed_sentences
            verified = fallback
        answer = await self._conclude(request, hits, verified)
        answer.prompt_tokens = generation.prompt_tokens
        answer.completion_tokens = generation.completion_tokens
        answer.finish_reason = generation.finish_reason
        return answer

    async def _conclude(
        self,
        request: _Request,
        hits: list[Hit],
        verified: Verified | None,
        min_score: float | None = None,
    ) -> Answer:
        """The verified answer; without one (nothing survived, or none was written), a verbatim
        quote of the best source sentence scoring `min_score` (default: the extractive
        threshold); without that, the refusal."""
        if verified is None or verified.status == "insufficient_evidence":
            started = time.perf_counter()
            floor = self.settings.grounding.extractive_threshold if min_score is None else min_score
            extracted = await anyio.to_thread.run_sync(
                self.quoter.extract, request.question, hits, request.keyword, request.access, floor
            )
            request.timings["extract"] = ms_since(started)
            if verified is not None:
                extracted.removed_sentences = verified.removed_sentences
            verified = extracted
        if verified.status == "insufficient_evidence":
            return self.replies.refusal(
                request.question, hits, request.timings, request.began, verified.removed_sentences
            )
        return self.replies.verified(verified, request.timings, request.began)

    @asynccontextmanager
    async def _queued(self, place: Place | None, timings: dict[str, float]) -> AsyncIterator[None]:
        """The generation slot (`place`: the queue place taken already), its wait timed as
        queue_wait."""
        started = time.perf_counter()
        async with self.gate.slot(place):
            timings["queue_wait"] = ms_since(started)
            yield

    def ask_stream(
        self,
        question: str,
        filters: Filters,
        top_k: int | None = None,
        collection: str | None = None,
        place: Place | None = None,
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """("sources", hits), ("token", text)..., ("final", Answer). Closing the iterator (a client
        that went away) stops generation at the next token, which frees the model for others."""

        def answer(on_sources: OnSources, on_token: OnToken) -> Awaitable[Answer]:
            return self.ask(question, filters, top_k, collection, on_sources, on_token, place)

        return stream_events(answer)

    def similarity_scorer(
        self, question: str, keyword: KeywordSnapshot, access: Access = UNRESTRICTED
    ) -> SentenceScorer:
        """Rank candidate sentences: embedding cosine with the question, plus the IDF-weighted
        share of the question's words they contain (chosen on the dev split: bench/, README).
        The IDF is over what `access` may read, so unreadable documents move no score."""
        return self.quoter.scorer(question, keyword, access)
