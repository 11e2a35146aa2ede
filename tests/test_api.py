"""The HTTP layer over the real embedder and Chroma, with a scripted generator (orchestration only)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from rag_server.app import create_app
from rag_server.embedding import Embedder
from rag_server.rag import Rag, assemble
from rag_server.settings import Settings
from tests.conftest import EXAMPLES, ScriptedGenerator

ClientFor = Callable[..., TestClient]  # type: ignore[type-arg]


@pytest.fixture
def ingested(settings: Settings, embedder: Embedder) -> Settings:
    build_pipeline(settings, embedder).run([EXAMPLES])
    return settings


@pytest.fixture
def client_for(embedder: Embedder) -> Iterator[ClientFor]:
    clients: list[TestClient] = []  # type: ignore[type-arg]

    def make(settings: Settings, generator: ScriptedGenerator) -> TestClient:  # type: ignore[type-arg]
        rag = assemble(settings, embedder, generator)
        client = TestClient(app=create_app(settings, rag), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_search_ranks_the_document_that_holds_the_fact(
    ingested: Settings, client_for: ClientFor
) -> None:
    client = client_for(ingested, ScriptedGenerator(["unused"]))
    response = client.post(
        "/v1/search", json={"query": "how many days of parental leave", "top_k": 3}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    assert results[0]["document_id"] == "leave-policy.docx"
    assert "18 weeks" in results[0]["text"]
    assert set(results[0]) == {
        "chunk_id", "document_id", "source", "title", "page", "section", "text", "score"
    }  # fmt: skip
    assert results[0]["score"] >= results[1]["score"] >= results[2]["score"]


def test_search_returns_pdf_page_numbers(ingested: Settings, client_for: ClientFor) -> None:
    client = client_for(ingested, ScriptedGenerator(["unused"]))
    top = client.post("/v1/search", json={"query": "international per diem business class flights"})
    first = top.json()["results"][0]
    assert (first["document_id"], first["page"]) == ("expenses-policy.pdf", 3)


def test_ask_sends_numbered_sources_to_the_model_and_returns_its_citations(
    ingested: Settings, client_for: ClientFor
) -> None:
    generator = ScriptedGenerator(["New starters begin at 09:30 on floor 4 [1]. See also [9]."])
    client = client_for(ingested, generator)
    response = client.post("/v1/ask", json={"question": "What time does the first day start?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "answered" and body["model"] == "scripted"
    prompt = generator.calls[0].text
    assert (
        "Source [1]" in prompt
        and "<<<SOURCE 1" in prompt
        and "What time does the first day start?" in prompt
    )
    assert [c["n"] for c in body["citations"]] == [1]  # [9] points at no source and is dropped
    cited = body["citations"][0]
    assert cited["document_id"] == "onboarding.md"
    source = (EXAMPLES / "onboarding.md").read_text()
    assert source[cited["start"] : cited["end"]] == cited["quote"]
    assert set(body["timings_ms"]) >= {"retrieve", "generate", "total"}
    assert body["usage"]["prompt_tokens"] > 0


def test_ask_on_an_empty_collection_refuses_without_calling_the_model(
    settings: Settings, client_for: ClientFor
) -> None:
    generator = ScriptedGenerator(["should never be used"])
    client = client_for(settings, generator)
    body = client.post("/v1/ask", json={"question": "What is the hotel cap?"}).json()
    assert body["status"] == "insufficient_evidence" and body["citations"] == []
    assert generator.calls == []


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/ask", {"question": ""}, "question"),
        ("/v1/ask", {"question": "   "}, "question"),
        ("/v1/ask", {"question": "x" * 2001}, "question"),
        ("/v1/ask", {"question": "ok?", "top_k": 0}, "top_k"),
        ("/v1/ask", {"question": "ok?", "surprise": 1}, "surprise"),
        ("/v1/search", {"query": "fine", "top_k": 500}, "top_k"),
        ("/v1/search", {}, "query"),
    ],
)
def test_invalid_requests_get_400_problem_details_naming_the_field(
    ingested: Settings, client_for: ClientFor, path: str, payload: dict[str, object], field: str
) -> None:
    response = client_for(ingested, ScriptedGenerator(["x"])).post(path, json=payload)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["title"]
    assert field in response.text


def test_malformed_json_is_a_400_problem(ingested: Settings, client_for: ClientFor) -> None:
    response = client_for(ingested, ScriptedGenerator(["x"])).post(
        "/v1/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_health_and_readiness(ingested: Settings, client_for: ClientFor) -> None:
    client = client_for(ingested, ScriptedGenerator(["x"]))
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["embedder"] == "sentence-transformers/all-MiniLM-L6-v2 (384-d)"


def test_readiness_fails_when_the_collection_is_gone(
    ingested: Settings, client_for: ClientFor
) -> None:
    client = client_for(ingested, ScriptedGenerator(["x"]))
    rag: Rag = client.app.state.rag
    rag.store.client.delete_collection(ingested.collection)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_full_generation_queue_answers_503_with_retry_after(
    ingested: Settings, client_for: ClientFor
) -> None:
    settings = ingested.model_copy(
        update={"generator": ingested.generator.model_copy(update={"queue_depth": 1})}
    )
    client = client_for(settings, ScriptedGenerator(["Slow answer [1]."], delay_s=1.5))
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(client.post("/v1/ask", json={"question": "hotel cap?"}).status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(statuses).count(200) >= 2  # one running, one waiting
    assert set(statuses) <= {200, 503} and 503 in statuses
    busy = client.post("/v1/ask", json={"question": "hotel cap?"})
    assert busy.status_code == 200  # the queue drained; nothing is stuck


def test_openapi_schema_lists_the_routes(ingested: Settings, client_for: ClientFor) -> None:
    schema = client_for(ingested, ScriptedGenerator(["x"])).get("/schema/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/healthz", "/readyz"} <= set(schema["paths"])


def test_the_app_is_built_from_settings_without_loading_models(
    settings: Settings, tmp_path: Path
) -> None:
    app = create_app(settings)  # cheap: models load in the lifespan, not here
    assert app.state.get("rag") is None
