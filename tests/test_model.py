"""The real Gemma 3 270M GGUF: loading, prompt style, generation bounds, and an answer end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.errors import ModelLoadError
from rag_core.settings import Settings, load_settings
from rag_server.app import create_app
from rag_server.generation import LlamaCppGenerator, Prompt
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, add_key, bearer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppGenerator:
    models = tmp_path_factory.mktemp("models")
    return LlamaCppGenerator.load(load_settings().generator, models)


def test_the_default_model_is_detected_as_a_base_model(gemma: LlamaCppGenerator) -> None:
    assert gemma.style == "base"
    assert gemma.name == "gemma-3-270m-q4_k_m.gguf"
    assert gemma.context_tokens == 4096


def test_generation_honours_max_tokens_and_stops(gemma: LlamaCppGenerator) -> None:
    prompt = Prompt(
        "base", text="Question: What colour is the sky?\nAnswer:", stop=("\nQuestion:",)
    )
    out = gemma.generate(prompt, max_tokens=8, deadline=time.monotonic() + 60)
    assert out.completion_tokens <= 9 and out.prompt_tokens > 5
    assert "Question:" not in out.text


def test_generation_stops_at_the_deadline(gemma: LlamaCppGenerator) -> None:
    prompt = Prompt("base", text="Write a long story about a dragon.\n")
    out = gemma.generate(prompt, max_tokens=2000, deadline=time.monotonic() + 0.3)
    assert out.finish_reason == "deadline"
    assert out.completion_tokens < 200


def test_a_truncated_model_file_is_refused_with_its_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    settings = load_settings().generator.model_copy(update={"model_path": broken})
    with pytest.raises(ModelLoadError, match=r"broken\.gguf"):
        LlamaCppGenerator.load(settings, tmp_path)


@pytest.fixture(params=["auto", "generate"])
def served(
    request: pytest.FixtureRequest, gemma: LlamaCppGenerator, settings: Settings, embedder: Embedder
) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The example documents served by the real app with the real model and default thresholds;
    "auto" quotes the sources (a base model), "generate" makes the model write."""
    grounding = settings.grounding.model_copy(update={"answer_mode": request.param})
    settings = settings.model_copy(update={"grounding": grounding})
    build_pipeline(settings, embedder).run([EXAMPLES])
    gemma.llm.reset()  # llama.cpp's evaluated-token count back to 0: the test reads whether it ran
    with TestClient(app=create_app(settings, assemble(settings, embedder, gemma))) as client:
        client.headers.update(bearer(add_key(settings)))
        yield client


def test_the_real_model_answers_from_the_example_documents(
    served: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    gemma: LlamaCppGenerator,
    request: pytest.FixtureRequest,
) -> None:
    question = "How many days of paid annual leave do employees get?"
    response = served.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    body = response.json()
    # With the default thresholds: answered or quoted, and the fact itself, from its document.
    assert body["status"] in {"answered", "extractive"}, body
    model_ran = gemma.llm.n_tokens > 0  # llama.cpp's own count of tokens it evaluated
    if request.node.callspec.params["served"] == "auto":  # a base model: quoted, never asked
        assert body["status"] == "extractive" and body["usage"]["completion_tokens"] == 0
        assert not model_ran
    else:
        assert model_ran and body["usage"]["prompt_tokens"] > 0
    assert "27 days" in body["answer"]
    assert body["citations"][0]["document_id"] == "leave-policy.docx"
    assert body["usage"]["completion_tokens"] <= settings.generator.max_tokens + 1


def test_the_real_model_refuses_what_the_documents_do_not_say(
    served: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    """The issue's own example: a stock pipeline made up the CEO's salary with this model."""
    for question in ("What is the CEO's salary?", "Can I bring my dog to the office?"):
        body = served.post("/v1/ask", json={"question": question}).json()
        assert body["status"] == "insufficient_evidence", body
        assert body["answer"] == settings.grounding.refusal
