"""A bounded load test over real uvicorn on loopback: a few hundred mixed requests (ask, search,
streamed ask, listings) from 16 clients against a queue of 4. The real embedder and Chroma serve;
the model is scripted with a realistic pause, since what is under test is the server, not Gemma.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rag_server.app import create_app
from rag_server.embedding import Embedder
from rag_server.rag import assemble
from rag_server.settings import Settings
from tests.conftest import ScriptedGenerator, add_key, bearer, serve_app

pytestmark = pytest.mark.slow
REQUESTS = 320
CLIENTS = 16
QUESTIONS = [
    "What is the maximum hotel cost per night?",
    "How many days of paid annual leave do employees get?",
    "Who do I ask about my laptop?",
    "What is the CEO's salary?",
]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_mixed_load_gets_only_200_429_or_503_and_memory_stays_flat(
    examples: Settings, embedder: Embedder
) -> None:
    limits = examples.limits.model_copy(update={"requests_per_minute": 100_000})
    tuned = examples.model_copy(update={"limits": limits})
    reply = "Hotel stays are capped at €165 per night [1]. Employees get 27 days [2]."
    generator = ScriptedGenerator([reply], delay_s=0.05, token_delay_s=0.005)
    app = create_app(tuned, assemble(tuned, embedder, generator))
    headers = bearer(add_key(tuned))
    outcomes: list[tuple[str, int | str, float]] = []
    lock = threading.Lock()

    def one(i: int, url: str, client: httpx.Client) -> None:
        kind = ["ask", "search", "stream", "list"][i % 4]
        question = QUESTIONS[i % len(QUESTIONS)]
        began = time.perf_counter()
        try:
            if kind == "ask":
                status: int | str = client.post(
                    f"{url}/v1/ask", json={"question": question}
                ).status_code
            elif kind == "search":
                status = client.post(f"{url}/v1/search", json={"query": question}).status_code
            elif kind == "list":
                status = client.get(f"{url}/v1/documents").status_code
            else:
                body = {"question": question, "stream": True}
                with client.stream("POST", f"{url}/v1/ask", json=body) as response:
                    status = response.status_code
                    text = "".join(response.iter_text())
                    if status == 200 and "event: final" not in text:
                        status = "stream without final event: " + text[-300:]  # e.g. error
        except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection
            status = type(exc).__name__
        with lock:
            outcomes.append((kind, status, time.perf_counter() - began))

    with serve_app(app) as url, httpx.Client(headers=headers, timeout=60) as client:
        for i in range(40):  # warm-up: caches, indexes, allocator
            one(i, url, client)
        warm_rss = _rss_mb()
        outcomes.clear()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(lambda i: one(i, url, client), range(REQUESTS)))
        end_rss = _rss_mb()
        ready = client.get(f"{url}/readyz").status_code

    mix = Counter(status for _, status, _ in outcomes)
    accepted = sorted(s for _, status, s in outcomes if status == 200)
    p50 = statistics.median(accepted)
    p95 = accepted[int(0.95 * (len(accepted) - 1))]
    print(
        f"\n{REQUESTS} requests, {CLIENTS} clients: {dict(mix)}; accepted p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms; RSS {warm_rss:.0f} -> {end_rss:.0f} MB"
    )
    assert len(outcomes) == REQUESTS
    assert set(mix) <= {200, 429, 503}, mix  # never a 500, a hang or a dropped connection
    assert mix[200] >= REQUESTS // 2  # search and listings never wait for the model
    assert ready == 200
    assert end_rss - warm_rss < 150, (warm_rss, end_rss)  # no growth with the request count
