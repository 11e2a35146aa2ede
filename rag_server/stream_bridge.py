"""Streaming an answer that is produced partly in a worker thread (the model writing) as async
events: the thread's tokens cross into the event loop, and a reader that goes away stops the
work, at once where it waits and at the next token where it generates."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio

from rag_core.records import Hit

OnSources = Callable[[list[Hit]], Awaitable[None]]
OnToken = Callable[[str], bool]


async def stream_events(
    answer: Callable[[OnSources, OnToken], Awaitable[Any]],
) -> AsyncGenerator[tuple[str, Any], None]:
    """("sources", hits), ("token", text)..., ("final", what `answer` returned). `answer` is
    given the two hooks: one for the passages shown to the model, one called from the worker
    thread with each piece it writes (False back: stop). Closing the iterator (a client that
    went away) stops generation at the next token, which frees the model for others."""
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
                final = await answer(on_sources, on_token)
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await send.send(("final", final))

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


def _consume(task: asyncio.Future[None]) -> None:
    """An abandoned stream's task may end in an error nobody awaits; retrieve it, don't log it."""
    if not task.cancelled():
        task.exception()
