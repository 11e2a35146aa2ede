"""A bounded load test over real uvicorn on loopback: a few hundred mixed requests (ask, search,
streamed ask, listings, uploads) from 16 clients against a queue of 4. The real embedder and Chroma
serve; the model is scripted with a realistic pause, since what is under test is the server, not
Gemma. Uploads chunk (counting word pieces) while queries encode, in other worker threads.
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

from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.rag import assemble
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
# Longer than the embedder reads (512 pieces), so chunking counts past it while queries truncate.
UPLOAD = "Section {n}. Visitors sign in at the front desk and wear badge number {n} all day. " * 40


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
    admin = bearer(add_key(tuned, "admin"))
    outcomes: list[tuple[str, int | str, float]] = []
    lock = threading.Lock()

    def one(i: int, url: str, client: httpx.Client) -> None:
        kind = ["ask", "search", "stream", "list"][i % 4] if i % 16 != 15 else "upload"
        question = QUESTIONS[i % len(QUESTIONS)]
        began = time.perf_counter()
        try:
            reply: httpx.Response | None = None
            if kind == "ask":
                reply = client.post(f"{url}/v1/ask", json={"question": question})
            elif kind == "search":
                reply = client.post(f"{url}/v1/search", json={"query": question})
            elif kind == "list":
                reply = client.get(f"{url}/v1/documents")
            elif kind == "upload":  # a new document each time (see the warm-up)
                content = UPLOAD.format(n=i).encode()
                files = {"file": (f"visitors-{i // 16}.txt", content, "text/plain")}
                reply = client.post(f"{url}/v1/documents", files=files, headers=admin)
            if reply is not None:
                status: int | str = reply.status_code
                if status not in (200, 201, 429, 503):  # keep what the server said, to report
                    status = f"{status} {reply.text[:300]}"
            else:  # a streamed ask
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
        # Warm-up: caches, indexes, allocator, and a few uploads. (Uploads under load each add a
        # document: two concurrent uploads replacing the same one are a separate matter.)
        for i in [*range(40), *range(REQUESTS + 15, REQUESTS + 15 + 8 * 16, 16)]:
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
    odd = [(kind, status) for kind, status, _ in outcomes if status not in (200, 201, 429, 503)]
    assert not odd, odd  # never a 404, a 500, a hang or a dropped connection
    uploads = Counter(status for kind, status, _ in outcomes if kind == "upload")
    assert uploads == {201: REQUESTS // 16}, uploads  # every upload went in beside the queries
    reads = Counter(status for kind, status, _ in outcomes if kind in ("search", "list"))
    assert set(reads) == {200}, reads  # search and listings never wait for the model
    assert ready == 200
    assert end_rss - warm_rss < 150, (warm_rss, end_rss)  # no growth with the request count
