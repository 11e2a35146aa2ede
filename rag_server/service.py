"""Orchestration: retrieve -> (nothing found: refuse) -> prompt -> generate -> cite. No web imports."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import anyio

from rag_server.embedding import Embedder
from rag_server.generation import GenerationGate, Generator
from rag_server.prompting import build_prompt
from rag_server.settings import Settings
from rag_server.store import ChunkStore, Hit

_CITATION = re.compile(r"\[(\d{1,3})\]")
NO_EVIDENCE = "The documents do not contain an answer to this question."


@dataclass(frozen=True)
class Citation:
    n: int
    hit: Hit


@dataclass
class Answer:
    answer: str
    status: str
    citations: list[Citation]
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class RagService:
    """Everything a request needs, loaded once and passed in."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: ChunkStore,
        generator: Generator,
        gate: GenerationGate,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.generator = generator
        self.gate = gate

    def _search_sync(self, query: str, top_k: int) -> list[Hit]:
        return self.store.query(self.embedder.embed_query(query), top_k)

    async def search(self, query: str, top_k: int) -> list[Hit]:
        """Embedding and the store call block, so they run in a worker thread."""
        return await anyio.to_thread.run_sync(self._search_sync, query, top_k)

    async def ask(self, question: str, top_k: int | None = None) -> Answer:
        began = time.perf_counter()
        hits = await self.search(question, top_k or self.settings.retrieval.top_k)
        timings = {"retrieve": _ms(began)}
        if not hits:
            timings["total"] = _ms(began)
            return Answer(
                NO_EVIDENCE, "insufficient_evidence", [], self.generator.name, timings_ms=timings
            )

        cfg = self.settings.generator
        max_tokens = cfg.max_tokens
        rendered = build_prompt(
            self.generator.style,
            question,
            hits,
            self.generator.count_tokens,
            budget=self.generator.context_tokens - max_tokens - 16,
        )
        started = time.perf_counter()
        async with self.gate.slot():
            deadline = time.monotonic() + cfg.timeout_s
            generation = await anyio.to_thread.run_sync(
                self.generator.generate, rendered.prompt, max_tokens, deadline
            )
        timings["generate"] = _ms(started)
        answer = generation.text.strip()
        cited = _cited_numbers(answer, len(rendered.sources))
        # Until answers are verified (next step), an uncited answer points at every source it saw.
        numbers = cited or list(range(1, len(rendered.sources) + 1))
        citations = [Citation(n, rendered.sources[n - 1]) for n in numbers]
        timings["total"] = _ms(began)
        return Answer(
            answer=answer,
            status="answered",
            citations=citations,
            model=self.generator.name,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            timings_ms=timings,
        )


def _cited_numbers(text: str, available: int) -> list[int]:
    """[n] markers that point at a source in the prompt, in first-seen order."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= available and n not in seen:
            seen.append(n)
    return seen
