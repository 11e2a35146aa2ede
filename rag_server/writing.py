"""The model writing an answer: the prompt fitted to its context, the generation run in a worker
thread before a deadline, and what it cost recorded (timings, token metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from rag_core.records import Hit
from rag_core.settings import Settings
from rag_server import metrics
from rag_server.generation import Generation, Generator
from rag_server.prompting import RenderedPrompt, build_prompt
from rag_server.timing import ms_since

# Room left in the context beside the prompt and the longest answer (max_tokens).
_CONTEXT_MARGIN = 16


class Writer:
    """Asks the generator to write from the best passages, one prompt at a time."""

    def __init__(self, generator: Generator, settings: Settings) -> None:
        self.generator = generator
        self.settings = settings

    def fit(self, question: str, hits: list[Hit]) -> RenderedPrompt:
        """The prompt from the first `prompt_sources` passages, as many as fit the model's context
        with room for the longest answer."""
        budget = (
            self.generator.context_tokens - self.settings.generator.max_tokens - _CONTEXT_MARGIN
        )
        return build_prompt(
            self.generator.style,
            question,
            hits[: self.settings.retrieval.prompt_sources],
            self.generator.count_tokens,
            budget=budget,
        )

    async def write(
        self,
        rendered: RenderedPrompt,
        hold: AbstractAsyncContextManager[Any],
        on_token: Callable[[str], bool] | None,
        timings: dict[str, float],
    ) -> Generation:
        """The model's text for `rendered`, written while holding `hold` (the generation slot),
        which is entered only when some source fitted: without one, nothing is written. `on_token`
        (called from the worker thread) sees each piece, False to stop. `timings` receives
        generate, and first_token (prompt processing and the first token) when one came."""
        cfg = self.settings.generator
        first_token: list[float] = []

        def tap(piece: str) -> bool:
            if not first_token:
                first_token.append(time.perf_counter())
            return on_token(piece) if on_token is not None else True

        started = time.perf_counter()
        generation = Generation("", 0, 0, "stop")  # no source fits the context: quote, or refuse
        if rendered.sources:
            async with hold:
                started = time.perf_counter()
                deadline = time.monotonic() + cfg.timeout_s
                generation = await anyio.to_thread.run_sync(
                    self.generator.generate, rendered.prompt, cfg.max_tokens, deadline, tap
                )
        timings["generate"] = ms_since(started)
        if first_token:
            timings["first_token"] = round((first_token[0] - started) * 1000, 2)
        seconds = time.perf_counter() - started
        metrics.GENERATED_TOKENS.inc(generation.completion_tokens)
        metrics.GENERATION_SECONDS.inc(seconds)
        metrics.TOKENS_PER_SECOND.set(generation.completion_tokens / max(seconds, 1e-6))
        return generation
