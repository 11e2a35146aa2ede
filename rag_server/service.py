"""Orchestration: retrieve -> evidence gate -> prompt -> generate -> verify -> (extract) -> respond.

No web imports. Nothing the model writes reaches the caller unless the verifier found it in a
retrieved passage; when nothing survives, the answer is a verbatim quote or a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np

from rag_core.access import UNRESTRICTED, Access
from rag_core.embedding import Embedder
from rag_core.settings import DEFAULT_EMBEDDER_NAME, Settings
from rag_core.store import Hit
from rag_server import metrics
from rag_server.answerability import Answerability, sentence_passages
from rag_server.catalog import Catalog, Corpus
from rag_server.generation import Generation, GenerationGate, Generator, Place
from rag_server.grounding import (
    AnswerStatus,
    Policy,
    Quote,
    Verified,
    best_quote,
    extractive,
    overlap_scores,
    sentence_spans,
    verify,
)
from rag_server.language import focus, reads_as_english
from rag_server.prompting import build_prompt
from rag_server.retrieval import Filters


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


NOT_ENGLISH = (
    "The question does not seem to be in English, and the search model reads English only, so "
    "the documents could not be searched for it. Please ask in English."
)


def _consume(task: asyncio.Future[None]) -> None:
    """An abandoned stream's task may end in an error nobody awaits; retrieve it, don't log it."""
    if not task.cancelled():
        task.exception()


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


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
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalog = catalog
        self.generator = generator
        self.gate = gate
        # The trained answer model; None: the previous cosine + IDF overlap with its two-level gate.
        self.scorer = scorer
        # The default embedder (and the answer model) read English only.
        self.english_only = settings.embedder.name == DEFAULT_EMBEDDER_NAME
        g = settings.grounding
        self.policy = Policy(g.min_coverage, g.min_relevance, g.refusal)
        mode = g.answer_mode
        if mode == "auto":
            mode = "extract" if generator.style == "base" else "generate"
        self.answer_mode = mode

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
        spent = timings if timings is not None else {}
        began = time.perf_counter()
        corpus = await self.corpus(collection)
        hits = await anyio.to_thread.run_sync(
            corpus.retriever.retrieve, query, top_k, filters, spent
        )
        spent["retrieve"] = _ms(began)
        return hits

    async def ask(
        self,
        question: str,
        filters: Filters,
        top_k: int | None = None,
        collection: str | None = None,
        on_sources: Callable[[list[Hit]], Awaitable[None]] | None = None,
        on_token: Callable[[str], bool] | None = None,
        reservation: Place | None = None,
    ) -> Answer:
        """The verified answer. The hooks serve streaming: `on_sources` gets the passages shown to
        the model; `on_token` (called from the worker thread) each raw piece, False to stop;
        `reservation` the queue place a stream took before its 200, given back here at the
        latest (the generation's slot gives it back as soon as the model is done)."""
        try:
            return await self._ask(
                question, filters, top_k, collection, on_sources, on_token, reservation
            )
        finally:
            if reservation is not None:
                reservation.release()  # a no-op when the slot gave it back already

    async def _ask(
        self,
        question: str,
        filters: Filters,
        top_k: int | None,
        collection: str | None,
        on_sources: Callable[[list[Hit]], Awaitable[None]] | None,
        on_token: Callable[[str], bool] | None,
        reservation: Place | None,
    ) -> Answer:
        began = time.perf_counter()
        corpus = await self.corpus(collection)
        timings: dict[str, float] = {}
        if self.english_only and not reads_as_english(question):
            return self._refuse(question, [], timings, began, reason=NOT_ENGLISH)
        question = focus(question)
        top = top_k or self.settings.retrieval.top_k
        hits = await self.search(question, top, filters, collection, timings)
        if not hits:
            metrics.EMPTY_RETRIEVALS.inc()
        started = time.perf_counter()
        g = self.settings.grounding
        best = max((h.score for h in hits), default=-1.0)
        refused = best < g.min_relevance  # no passage could support anything
        weak = best < g.gate_threshold
        timings["gate"] = _ms(started)
        if refused:
            return self._refuse(question, hits, timings, began)
        if self.scorer is not None:
            return await self._ask_scored(
                question,
                hits,
                corpus,
                filters.access,
                on_sources,
                on_token,
                reservation,
                timings,
                began,
            )

        if weak or self.answer_mode == "extract":
            # Weak evidence is never handed to the model to write from, and a quote from it must
            # match the question more closely (calibrated: README, Evaluation).
            floor = max(g.weak_extractive_threshold, g.extractive_threshold) if weak else None
            if on_sources is not None:
                await on_sources(hits)
            # Quoting is CPU work too (embedding every candidate sentence): the same slot and
            # bounded queue as generation, so overload is a 503 rather than ever slower answers.
            started = time.perf_counter()
            async with self.gate.slot(reservation):
                timings["queue_wait"] = _ms(started)
                return await self._conclude(
                    question, hits, corpus, filters.access, None, timings, began, floor
                )
        return await self._generate(
            question,
            hits,
            corpus,
            filters.access,
            on_sources,
            on_token,
            reservation,
            timings,
            began,
        )

    async def _ask_scored(
        self,
        question: str,
        hits: list[Hit],
        corpus: Corpus,
        access: Access,
        on_sources: Callable[[list[Hit]], Awaitable[None]] | None,
        on_token: Callable[[str], bool] | None,
        reservation: Place | None,
        timings: dict[str, float],
        began: float,
    ) -> Answer:
        """The answer model reads the question with every candidate sentence: the best ones, if
        they answer it (score >= answer_threshold), are the quote; otherwise the answer is the
        refusal, pointing to the sentences that came closest. An instruction-tuned model writes
        only when a sentence answers, from the passages in the order the scorer ranks them."""
        started = time.perf_counter()
        # Scoring is CPU work like generation: the same slot and bounded queue, held through the
        # generation too, so a stream that has started is never turned away half-way.
        async with self.gate.slot(reservation):
            timings["queue_wait"] = _ms(started)
            started = time.perf_counter()
            quoted, ranked = await anyio.to_thread.run_sync(self._quote_scored, question, hits)
            timings["extract"] = _ms(started)
            if quoted.status == "insufficient_evidence":
                return self._refuse(question, hits, timings, began, ranked=ranked)
            if self.answer_mode == "extract":
                if on_sources is not None:
                    await on_sources(hits)
                return await self._conclude(question, hits, corpus, access, quoted, timings, began)
            return await self._generate(
                question,
                [h for h, _ in ranked],
                corpus,
                access,
                on_sources,
                on_token,
                None,
                timings,
                began,
                fallback=quoted,
            )

    def _quote_scored(
        self, question: str, hits: list[Hit]
    ) -> tuple[Verified, list[tuple[Hit, Quote]]]:
        """The extractive answer at the answer threshold, and every passage with its best-scoring
        sentence, best first (the prompt order, and the refusal's closest passages)."""
        assert self.scorer is not None
        memo: dict[str, float] = {}
        judge = self.scorer
        passages = sentence_passages(hits)

        def score(q: str, sentences: list[str]) -> list[float]:
            todo = [s for s in dict.fromkeys(sentences) if s not in memo]
            if todo:
                context = [passages.get(s, (0.0, s)) for s in todo]
                memo.update(zip(todo, judge.probabilities(q, todo, context), strict=True))
            return [memo[s] for s in sentences]

        threshold = self.settings.grounding.answer_threshold
        relevance = [h.score for h in hits]
        quoted = extractive(question, hits, relevance, self.policy, score, threshold)
        best: list[tuple[float, int, Quote]] = []
        for n, hit in enumerate(hits, start=1):
            text = hit.chunk.text
            scored = [(lo, hi) for lo, hi in sentence_spans(text) if text[lo:hi] in memo]
            if scored:  # its sentence closest to answering; headings and fragments were not scored
                lo, hi = max(scored, key=lambda span: memo[text[span[0] : span[1]]])
                quote = Quote(n, hit, hit.chunk.start + lo, hit.chunk.start + hi, text[lo:hi])
                best.append((memo[text[lo:hi]], -n, quote))
            else:
                best.append((-1.0, -n, best_quote(n, hit, question)))
        best.sort(key=lambda item: (item[0], item[1]), reverse=True)
        ranked: list[tuple[Hit, Quote]] = []
        for _, _, quote in best:
            if all(quote.text != q.text for _, q in ranked):  # overlapping chunks repeat text
                ranked.append((quote.hit, quote))
        return quoted, ranked

    async def _generate(
        self,
        question: str,
        hits: list[Hit],
        corpus: Corpus,
        access: Access,
        on_sources: Callable[[list[Hit]], Awaitable[None]] | None,
        on_token: Callable[[str], bool] | None,
        reservation: Place | None,
        timings: dict[str, float],
        began: float,
        fallback: Verified | None = None,
    ) -> Answer:
        """The model writes from the best passages; its verified sentences are the answer. With
        `fallback` (the scored quote), the caller holds the slot already, and nothing verified
        falls back to that quote."""
        cfg = self.settings.generator
        started = time.perf_counter()
        rendered = build_prompt(
            self.generator.style,
            question,
            hits[: self.settings.retrieval.prompt_sources],
            self.generator.count_tokens,
            budget=self.generator.context_tokens - cfg.max_tokens - 16,
        )
        timings["prompt"] = _ms(started)
        if on_sources is not None:
            await on_sources(rendered.sources)
        first_token: list[float] = []

        def tap(piece: str) -> bool:
            if not first_token:
                first_token.append(time.perf_counter())
            return on_token(piece) if on_token is not None else True

        started = time.perf_counter()
        generation = Generation("", 0, 0, "stop")  # no source fits the context: quote, or refuse
        if rendered.sources:
            async with nullcontext() if fallback is not None else self.gate.slot(reservation):
                if fallback is None:
                    timings["queue_wait"] = _ms(started)
                started = time.perf_counter()
                deadline = time.monotonic() + cfg.timeout_s
                generation = await anyio.to_thread.run_sync(
                    self.generator.generate, rendered.prompt, cfg.max_tokens, deadline, tap
                )
        timings["generate"] = _ms(started)
        if first_token:  # prompt processing and the first token, inside `generate`
            timings["first_token"] = round((first_token[0] - started) * 1000, 2)
        seconds = time.perf_counter() - started
        metrics.GENERATED_TOKENS.inc(generation.completion_tokens)
        metrics.GENERATION_SECONDS.inc(seconds)
        metrics.TOKENS_PER_SECOND.set(generation.completion_tokens / max(seconds, 1e-6))

        started = time.perf_counter()
        sources = rendered.sources
        verified = verify(generation.text, sources, [h.score for h in sources], self.policy)
        timings["verify"] = _ms(started)
        if verified.status != "answered" and fallback is not None:
            fallback.removed_sentences = verified.removed_sentences
            verified = fallback
        answer = await self._conclude(question, hits, corpus, access, verified, timings, began)
        answer.prompt_tokens = generation.prompt_tokens
        answer.completion_tokens = generation.completion_tokens
        answer.finish_reason = generation.finish_reason
        return answer

    async def _conclude(
        self,
        question: str,
        hits: list[Hit],
        corpus: Corpus,
        access: Access,
        verified: Verified | None,
        timings: dict[str, float],
        began: float,
        min_score: float | None = None,
    ) -> Answer:
        """The verified answer; without one (nothing survived, or none was written), a verbatim
        quote of the best source sentence scoring `min_score` (default: the extractive
        threshold); without that, the refusal."""
        if verified is None or verified.status == "insufficient_evidence":
            started = time.perf_counter()
            floor = self.settings.grounding.extractive_threshold if min_score is None else min_score
            extracted = await anyio.to_thread.run_sync(
                self._extract, question, hits, corpus, access, floor
            )
            timings["extract"] = _ms(started)
            if verified is not None:
                extracted.removed_sentences = verified.removed_sentences
            verified = extracted
        if verified.status == "insufficient_evidence":
            return self._refuse(question, hits, timings, began, verified.removed_sentences)
        timings["total"] = _ms(began)
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

    async def ask_stream(
        self,
        question: str,
        filters: Filters,
        top_k: int | None = None,
        collection: str | None = None,
        reservation: Place | None = None,
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """("sources", hits), ("token", text)..., ("final", Answer). Closing the iterator (a client
        that went away) stops generation at the next token, which frees the model for others."""
        send, receive = anyio.create_memory_object_stream[tuple[str, Any]](max_buffer_size=math.inf)
        cancelled = threading.Event()

        def on_token(piece: str) -> bool:
            if cancelled.is_set():
                return False
            try:
                anyio.from_thread.run_sync(send.send_nowait, ("token", piece))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return False  # the reader is gone
            return True

        async def on_sources(hits: list[Hit]) -> None:
            await send.send(("sources", hits))

        # Ends the work of a reader gone early: at once where it retrieves or waits for the
        # model (giving its place back), and after the worker thread where it generates (which
        # the cancelled flag makes the next token): anyio defers a cancel until the thread
        # returns, so the model's slot is never given back while the model is still in use.
        abandon = anyio.CancelScope()

        async def produce() -> None:
            with abandon:
                async with send:
                    answer = await self.ask(
                        question, filters, top_k, collection, on_sources, on_token, reservation
                    )
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await send.send(("final", answer))

        task = asyncio.ensure_future(produce())
        try:
            async for event in receive:
                yield event
            await task  # re-raise what went wrong before "final"
        finally:
            cancelled.set()  # before closing, so the worker stops rather than hits a closed stream
            receive.close()
            abandon.cancel()
            task.add_done_callback(_consume)

    def similarity_scorer(
        self, question: str, corpus: Corpus, access: Access = UNRESTRICTED
    ) -> Callable[[str, list[str]], list[float]]:
        """Rank candidate sentences: embedding cosine with the question, plus the IDF-weighted
        share of the question's words they contain (chosen on the dev split: bench/, README).
        The IDF is over what `access` may read, so unreadable documents move no score."""
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        weight = self.settings.grounding.lexical_weight
        idf = corpus.keyword.current().idf(access)

        def score(_: str, sentences: list[str]) -> list[float]:
            cosine = self.embedder.embed_texts(sentences) @ query
            overlap = overlap_scores(question, sentences, idf)
            return [float(c) + weight * o for c, o in zip(cosine, overlap, strict=True)]

        return score

    def _extract(
        self, question: str, hits: list[Hit], corpus: Corpus, access: Access, min_score: float
    ) -> Verified:
        """The best source sentences, quoted verbatim, if they score `min_score`."""
        return extractive(
            question,
            hits,
            [h.score for h in hits],
            self.policy,
            score=self.similarity_scorer(question, corpus, access),
            min_score=min_score,
        )

    def _refuse(
        self,
        question: str,
        hits: list[Hit],
        timings: dict[str, float],
        began: float,
        removed: int = 0,
        ranked: list[tuple[Hit, Quote]] | None = None,
        reason: str | None = None,
    ) -> Answer:
        """A fixed refusal, with the nearest passages as `related` (never as citations): the
        scorer's closest sentences when it `ranked` them, else each passage's best word match."""
        if ranked is not None:
            related = [q for _, q in ranked[:3]]
        else:
            related = [best_quote(n, hit, question) for n, hit in enumerate(hits[:3], start=1)]
        timings["total"] = _ms(began)
        metrics.ANSWERS.labels("insufficient_evidence").inc()
        return Answer(
            reason or self.settings.grounding.refusal,
            "insufficient_evidence",
            [],
            related,
            removed,
            self.generator.name,
            timings_ms=timings,
        )
