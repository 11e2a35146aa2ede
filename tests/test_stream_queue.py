"""Streams and the generation queue, over real uvicorn: a stream takes its place before its 200
(or gets 503 + Retry-After like any request), and gives it back exactly when it ends, also when
the client goes away mid-stream. The model is a scripted one that holds the slot until the test
lets it go, so who is admitted and who is refused does not depend on timing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.generation import Generation, Prompt
from rag_server.rag import assemble
from tests.conftest import ScriptedGenerator, add_key, bearer, serve_app

QUESTION = "What is the maximum hotel cost per night?"
ANSWER = "Hotel stays are capped at €165 per night [1]."
PATIENCE_S = 60.0  # only a bound on a hang: every wait below ends on an event


@dataclass
class HeldGenerator(ScriptedGenerator):
    """Takes the model and holds it until `release` is set, then writes its scripted reply."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def generate(
        self,
        prompt: Prompt,
        max_tokens: int,
        deadline: float,
        on_token: Callable[[str], bool] | None = None,
    ) -> Generation:
        self.entered.set()
        try:
            if not self.release.wait(PATIENCE_S):
                raise TimeoutError("the test never released the model")
            return super().generate(prompt, max_tokens, deadline, on_token)
        finally:
            self.done.set()


def _until(condition: Callable[[], bool]) -> bool:
    """Wait for a state another thread reaches (polled, bounded): never a fixed sleep."""
    pause = threading.Event()
    for _ in range(int(PATIENCE_S / 0.01)):
        if condition():
            return True
        pause.wait(0.01)
    return condition()


def _queue_waiting(url: str, headers: dict[str, str]) -> float:
    metrics = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
    line = next(x for x in metrics.splitlines() if x.startswith("rag_generation_queue_waiting "))
    return float(line.split()[1])


def _with_depth(examples: Settings, depth: int) -> Settings:
    generator = examples.generator.model_copy(update={"queue_depth": depth})
    limits = examples.limits.model_copy(update={"requests_per_minute": 100_000})
    return examples.model_copy(update={"generator": generator, "limits": limits})


@pytest.mark.slow
def test_streams_beyond_the_queue_get_503_before_any_byte_and_the_gauge_stays_bounded(
    examples: Settings, embedder: Embedder
) -> None:
    """Found under load: with queue depth 4, 50 streamed asks all got 200 and the waiting gauge
    read 16, because a stream's place was only checked against requests already parked on the
    model, and none were while they were all still retrieving."""
    depth, extra = 2, 3
    tuned = _with_depth(examples, depth)
    generator = HeldGenerator([ANSWER])
    rag = assemble(tuned, embedder, generator)
    headers = bearer(add_key(tuned))
    streams = 1 + depth + extra  # the model's place, the queue, and more
    seen = threading.Barrier(streams + 1, timeout=PATIENCE_S)
    start = threading.Barrier(streams, timeout=PATIENCE_S)
    results: list[tuple[int, str | None, str]] = []
    lock = threading.Lock()

    def stream(url: str) -> None:
        with httpx.Client(headers=headers, timeout=PATIENCE_S) as client:
            start.wait()
            body = {"question": QUESTION, "stream": True}
            with client.stream("POST", f"{url}/v1/ask", json=body) as response:
                status, retry = response.status_code, response.headers.get("retry-after")
                seen.wait()  # every stream has its status before the model writes a word
                text = response.read().decode()
        with lock:
            results.append((status, retry, text))

    with serve_app(create_app(tuned, rag)) as url:
        before = _queue_waiting(url, headers)
        threads = [threading.Thread(target=stream, args=(url,)) for _ in range(streams)]
        for t in threads:
            t.start()
        seen.wait()
        peak = (
            _queue_waiting(url, headers) - before
        )  # nothing has left yet: the most there ever were
        admitted = rag.service.gate.admitted
        generator.release.set()
        for t in threads:
            t.join(PATIENCE_S)
        after = _queue_waiting(url, headers) - before

    refused = [r for r in results if r[0] == 503]
    served = [r for r in results if r[0] == 200]
    assert len(results) == streams
    assert len(refused) == extra, [r[:2] for r in results]
    assert all(retry and int(retry) > 0 for _, retry, _ in refused)
    assert all('"status":503' in text.replace(" ", "") for _, _, text in refused)
    assert len(served) == 1 + depth and admitted == 1 + depth
    assert all("event: final" in text and "event: error" not in text for _, _, text in served)
    assert peak == depth and after == 0


def _open_stream(client: httpx.Client, url: str) -> httpx.Response:
    """A streamed ask, open once its status and headers are in."""
    body = {"question": QUESTION, "stream": True}
    return client.send(client.build_request("POST", f"{url}/v1/ask", json=body), stream=True)


@pytest.mark.slow
def test_a_queued_stream_the_client_abandons_gives_its_place_to_the_next(
    examples: Settings, embedder: Embedder
) -> None:
    """Places used to be freed by a garbage-collector finalizer, and an abandoned stream still
    waited for the model and generated for nobody. Now its response gives the place back when
    the client goes, and its request ends without reaching the model."""
    tuned = _with_depth(examples, 1)  # the model's place and one waiting
    generator = HeldGenerator([ANSWER])
    rag = assemble(tuned, embedder, generator)
    headers = bearer(add_key(tuned))
    with serve_app(create_app(tuned, rag)) as url:
        first = httpx.Client(headers=headers, timeout=PATIENCE_S)
        running = _open_stream(first, url)
        assert generator.entered.wait(PATIENCE_S)  # the first holds the model
        gone = httpx.Client(headers=headers, timeout=PATIENCE_S)
        queued = _open_stream(gone, url)
        assert queued.status_code == 200 and rag.service.gate.admitted == 2
        queued.close()
        gone.close()  # its client goes away while it waits
        freed = _until(lambda: rag.service.gate.admitted == 1)
        later = httpx.Client(headers=headers, timeout=PATIENCE_S)
        taken = _open_stream(later, url)
        generator.release.set()
        texts = [running.read().decode(), taken.read().decode()]
        for client in (first, later):
            client.close()
    assert freed, "the abandoned stream kept its place in the queue"
    assert taken.status_code == 200, texts[1]  # its place went to the next stream
    assert all("event: final" in text for text in texts)
    assert len(generator.calls) == 2  # the abandoned one never reached the model


@pytest.mark.slow
def test_a_stream_abandoned_while_the_model_writes_stops_it_at_the_next_token(
    examples: Settings, embedder: Embedder
) -> None:
    """An abandoned stream's generation used to run to its end for nobody, holding the model."""
    tuned = _with_depth(examples, 1)
    generator = HeldGenerator([ANSWER])
    rag = assemble(tuned, embedder, generator)
    with serve_app(create_app(tuned, rag)) as url:
        client = httpx.Client(headers=bearer(add_key(tuned)), timeout=PATIENCE_S)
        response = _open_stream(client, url)
        assert generator.entered.wait(PATIENCE_S)  # it holds the model now
        response.close()
        client.close()  # the client goes away mid-stream
        freed = _until(lambda: rag.service.gate.admitted == 0)
        generator.release.set()
        assert generator.done.wait(PATIENCE_S)
        assert _until(lambda: bool(generator.finished))
    assert freed, "the abandoned stream kept its place in the queue"
    assert generator.finished == ["cancelled"]  # the model stopped at its first token
