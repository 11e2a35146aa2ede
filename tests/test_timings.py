"""Every per-request cost shows up in `timings_ms`: retrieval stages, gate, prompt, queue, model."""

from __future__ import annotations

import threading

from rag_core.settings import Settings
from tests.conftest import ClientFor, ScriptedGenerator
from tests.test_api import ingested

__all__ = ["ingested"]  # a fixture, imported for pytest

RETRIEVAL = {"embed_query", "dense", "keyword", "fuse", "retrieve"}
QUESTION = {"question": "What time does the first day start?"}


def test_an_answer_reports_every_stage_and_they_add_up(
    ingested: Settings, client_for: ClientFor
) -> None:
    reply = "The first day starts at 09:30 at the reception on floor 4."
    generator = ScriptedGenerator([reply], delay_s=0.3, token_delay_s=0.02)
    body = client_for(ingested, generator).post("/v1/ask", json=QUESTION).json()
    timings = body["timings_ms"]
    assert body["status"] == "answered"
    # "extract": the answer model judging the candidates, before the model may write.
    stages = {
        "read",
        "gate",
        "queue_wait",
        "extract",
        "prompt",
        "generate",
        "first_token",
        "verify",
        "total",
    }
    assert set(timings) == RETRIEVAL | stages
    # The scripted model sleeps 0.3 s before its first piece, then 0.02 s per piece.
    assert 300 <= timings["first_token"] < timings["generate"]
    assert timings["generate"] >= 300 + 20 * len(reply.split())
    assert timings["embed_query"] + timings["dense"] + timings["keyword"] <= timings["retrieve"]
    steps = ("read", "retrieve", "gate", "queue_wait", "extract", "prompt", "generate")
    spent = sum(timings[k] for k in steps)
    assert spent + timings["verify"] <= timings["total"] + 0.1


def test_the_extractive_fallback_is_timed_on_its_own(
    ingested: Settings, client_for: ClientFor
) -> None:
    generator = ScriptedGenerator(["Something the sources never say about unicorns [1]."])
    body = client_for(ingested, generator).post("/v1/ask", json=QUESTION).json()
    assert body["status"] == "extractive"
    assert body["timings_ms"]["extract"] > 0
    assert body["timings_ms"]["extract"] <= body["timings_ms"]["total"]


def test_time_waiting_for_the_model_is_reported_as_queue_wait(
    ingested: Settings, client_for: ClientFor
) -> None:
    generator = ScriptedGenerator(["The first day starts at 09:30."], delay_s=1.0)
    client = client_for(ingested, generator)
    waits: list[float] = []

    def ask() -> None:
        waits.append(client.post("/v1/ask", json=QUESTION).json()["timings_ms"]["queue_wait"])

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(waits) == 2
    assert min(waits) < 500 <= max(waits)  # the second waited for the first's 1 s generation


def test_a_refusal_at_the_gate_reports_retrieval_and_gate_only(
    ingested: Settings, client_for: ClientFor
) -> None:
    """No passage relevant enough to support anything: refused before any answer work."""
    strict = ingested.grounding.model_copy(update={"min_relevance": 0.99})
    settings = ingested.model_copy(update={"grounding": strict})
    generator = ScriptedGenerator(["unused"])
    body = client_for(settings, generator).post("/v1/ask", json=QUESTION).json()
    assert body["status"] == "insufficient_evidence" and not generator.calls
    assert set(body["timings_ms"]) == RETRIEVAL | {"read", "gate", "total"}


def test_weak_evidence_is_quoted_not_written_and_timed_so(
    ingested: Settings, client_for: ClientFor
) -> None:
    strict = ingested.grounding.model_copy(  # the two-level gate of the similarity scorer
        update={"scorer": "similarity", "gate_threshold": 0.99, "weak_extractive_threshold": 0.8}
    )
    settings = ingested.model_copy(update={"grounding": strict})
    generator = ScriptedGenerator(["unused"])
    body = client_for(settings, generator).post("/v1/ask", json=QUESTION).json()
    assert body["status"] == "extractive" and not generator.calls
    assert set(body["timings_ms"]) == RETRIEVAL | {"read", "gate", "queue_wait", "extract", "total"}


def test_search_reports_its_retrieval_stages(ingested: Settings, client_for: ClientFor) -> None:
    client = client_for(ingested, ScriptedGenerator(["unused"]))
    body = client.post("/v1/search", json={"query": "parental leave"}).json()
    assert body["results"]
    assert set(body["timings_ms"]) == RETRIEVAL
    assert all(v >= 0 for v in body["timings_ms"].values())
