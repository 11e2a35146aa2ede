"""Limits and overload: body and field bounds, per-key rate limits, a bounded generation queue
under concurrent load, the OpenAPI declaration of every status, /metrics, and logs without keys."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import httpx
import pytest
from litestar.testing import TestClient

from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import ScriptedGenerator, add_key, bearer, serve_app

QUESTION = "What is the maximum hotel cost per night?"
ANSWER = "Hotel stays are capped at €165 per night [1]."


@pytest.fixture
def tuned(examples: Settings) -> Settings:
    limits = examples.limits.model_copy(update={"requests_per_minute": 5, "max_body_kb": 4})
    return examples.model_copy(update={"limits": limits})


def test_each_key_has_its_own_rate_limit_with_retry_after(
    tuned: Settings, embedder: Embedder
) -> None:
    app = create_app(tuned, assemble(tuned, embedder, ScriptedGenerator([ANSWER])))
    first, second = bearer(add_key(tuned)), bearer(add_key(tuned))
    with TestClient(app=app) as client:
        codes = [
            client.post("/v1/search", json={"query": "hotel"}, headers=first).status_code
            for _ in range(7)
        ]
        assert codes == [200] * 5 + [429] * 2
        limited = client.post("/v1/search", json={"query": "hotel"}, headers=first)
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert 0 < int(limited.headers["retry-after"]) <= 60
        assert client.post("/v1/search", json={"query": "hotel"}, headers=second).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes are never limited


def test_oversized_bodies_and_fields_are_4xx_naming_the_problem(
    tuned: Settings, embedder: Embedder
) -> None:
    app = create_app(tuned, assemble(tuned, embedder, ScriptedGenerator([ANSWER])))
    with TestClient(app=app) as client:
        client.headers.update(bearer(add_key(tuned)))
        r = client.post(
            "/v1/ask",
            content=b'{"question": "' + b"a" * 5000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and r.headers["content-type"].startswith(
            "application/problem+json"
        )
        r = client.post("/v1/ask", json={"question": "q" * 2001})
        assert r.status_code == 400 and "question" in r.text
        r = client.post("/v1/search", json={"query": "hotel", "top_k": 51})
        assert r.status_code == 400 and "top_k" in r.text
        r = client.post("/v1/search", json={"query": "hotel", "collection": "../etc"})
        assert r.status_code == 400 and "collection" in r.text
        # Reserved for the uploads' original files (rag_core.originals): never read as chunks.
        r = client.post("/v1/search", json={"query": "hotel", "collection": "default--files"})
        assert r.status_code == 400 and "reserved" in r.text, r.text


def test_sixteen_concurrent_askers_get_200_or_503_never_an_error(
    examples: Settings, embedder: Embedder
) -> None:
    """Over real uvicorn: queue depth 4, one slow generation at a time, 16 clients at once."""
    generator_settings = examples.generator.model_copy(update={"queue_depth": 4})
    tuned = examples.model_copy(update={"generator": generator_settings})
    generator = ScriptedGenerator([ANSWER], delay_s=0.4)
    app = create_app(tuned, assemble(tuned, embedder, generator))
    headers = bearer(add_key(tuned))
    results: list[object] = []
    with serve_app(app) as url:
        barrier = threading.Barrier(16)

        def ask() -> None:
            barrier.wait()
            try:
                r = httpx.post(
                    f"{url}/v1/ask", json={"question": QUESTION}, headers=headers, timeout=60
                )
                results.append((r.status_code, r.headers.get("retry-after")))
            except httpx.HTTPError as exc:  # a hang or a dropped connection
                results.append(repr(exc))

        threads = [threading.Thread(target=ask) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        ready = httpx.get(f"{url}/readyz", timeout=10).status_code
    codes = Counter(r[0] if isinstance(r, tuple) else r for r in results)
    assert len(results) == 16 and set(codes) <= {200, 503}, codes
    assert 1 + 4 <= codes[200] < 16  # the running one and the queue were served, the rest refused
    assert all(r[1] for r in results if isinstance(r, tuple) and r[0] == 503)  # Retry-After
    assert ready == 200


def test_openapi_declares_every_status_each_route_returns(
    tuned: Settings, embedder: Embedder
) -> None:
    app = create_app(tuned, assemble(tuned, embedder, ScriptedGenerator([ANSWER])))
    schema = app.openapi_schema.to_schema()
    paths = schema["paths"]
    ask = paths["/v1/ask"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "413", "429", "503"} <= set(ask)
    assert "application/problem+json" in ask["401"]["content"]
    upload = paths["/v1/documents"]["post"]["responses"]
    assert {"201", "401", "403", "413", "422", "429"} <= set(upload)
    assert {"/v1/chat/completions", "/v1/models", "/v1/documents/{document_id}"} <= set(paths)
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_metrics_count_requests_answers_and_refusals(tuned: Settings, embedder: Embedder) -> None:
    app = create_app(tuned, assemble(tuned, embedder, ScriptedGenerator([ANSWER])))
    with TestClient(app=app) as client:
        client.headers.update(bearer(add_key(tuned)))
        client.post("/v1/ask", json={"question": QUESTION})
        client.post("/v1/ask", json={"question": "zzqx vvbn"})  # nothing relevant: refused
        text = client.get("/metrics").text
    for name in (
        "rag_http_requests_total",
        "rag_http_request_duration_seconds_bucket",
        'rag_answers_total{status="answered"}',
        'rag_answers_total{status="insufficient_evidence"}',
        "rag_generation_queue_waiting",
        "rag_generation_tokens_per_second",
        "rag_empty_retrievals_total",
    ):
        assert name in text, name


def test_logs_never_contain_api_keys_or_hashed_questions(
    tuned: Settings,
    embedder: Embedder,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hashed = tuned.model_copy(
        update={"audit": tuned.audit.model_copy(update={"path": "-", "hash_questions": True})}
    )
    app = create_app(hashed, assemble(hashed, embedder, ScriptedGenerator([ANSWER])))
    token = add_key(hashed)
    with caplog.at_level(logging.DEBUG), TestClient(app=app) as client:
        client.post("/v1/ask", json={"question": QUESTION}, headers=bearer(token))
        client.post("/v1/ask", json={"question": QUESTION}, headers=bearer(token + "x"))
    out = capsys.readouterr()
    everything = caplog.text + out.out + out.err
    assert '"action": "ask"' in out.out  # the audit line went to stdout
    secret = token.split("_", 2)[2]  # rag_<id>_<secret>
    assert token not in everything and secret not in everything
    assert QUESTION not in everything


def test_queue_places_count_from_admission_and_are_given_back_exactly_once() -> None:
    """Found by load tests: a stream's place was checked only against requests parked on the
    model, so while the model was idle every stream got in; and a dropped place was given back
    by the garbage collector. Now places count from admission and have an explicit owner."""
    import asyncio

    from rag_core.errors import OverloadedError
    from rag_server.generation import GenerationGate

    gate = GenerationGate(depth=1)
    first, second = gate.admit(), gate.admit()  # the model's place and one waiting
    with pytest.raises(OverloadedError):
        gate.admit()  # the model is still idle, but both places are taken
    with pytest.raises(OverloadedError):
        gate.check()
    assert gate.waiting == 1
    second.release()
    second.release()  # at most once
    assert gate.admitted == 1
    with gate.admit() as third:  # a `with` block owns its place
        assert gate.admitted == 2
    assert gate.admitted == 1 and not third.held

    async def generate() -> None:
        async with gate.slot(first):  # a stream's own place, given back when its slot ends
            assert gate.admitted == 1 and gate.waiting == 0
        assert gate.admitted == 0 and not first.held

    asyncio.run(generate())
