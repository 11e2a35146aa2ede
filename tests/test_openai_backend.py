"""The OpenAI-compatible generator backend against a real server process on loopback:
llama-cpp-python's own server on the default GGUF. Retrieval, the gate and verification stay ours."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import GeneratorSettings, Settings, load_settings
from rag_server.app import create_app
from rag_server.generation import LlamaCppGenerator, Prompt, default_model_path
from rag_server.openai_backend import OpenAIGenerator
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, add_key, bearer
from tests.processes import LlamaCppServer

pytestmark = pytest.mark.slow

PROMPT = Prompt(
    "base",
    text="Question: What is the capital of France?\nAnswer: The capital of France is",
    stop=("\nQuestion:",),
)


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return default_model_path(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def llama_server(gguf: Path) -> Iterator[LlamaCppServer]:
    server = LlamaCppServer(gguf).start()
    yield server
    server.kill()


def _settings(server: LlamaCppServer, **extra: object) -> GeneratorSettings:
    return load_settings(
        generator={
            "backend": "openai",
            "base_url": server.base_url,
            "model": server.alias,
            "timeout_s": 120,
            **extra,
        }
    ).generator


def test_remote_greedy_output_equals_the_in_process_model(
    llama_server: LlamaCppServer, gguf: Path
) -> None:
    """Same GGUF, temperature 0: the backend changes where the text is written, not what."""
    remote = OpenAIGenerator.connect(_settings(llama_server, prompt_style="base"))
    local = LlamaCppGenerator.load(
        load_settings(generator={"model_path": gguf, "n_threads": 1}).generator, gguf.parent
    )
    deadline = time.monotonic() + 120
    got = remote.generate(PROMPT, max_tokens=12, deadline=deadline)
    want = local.generate(PROMPT, max_tokens=12, deadline=deadline)
    assert got.text.strip() and got.text == want.text
    assert got.completion_tokens > 0 and got.prompt_tokens > 0
    assert remote.name == llama_server.alias


def test_streamed_pieces_add_up_and_a_reader_can_stop_them(llama_server: LlamaCppServer) -> None:
    remote = OpenAIGenerator.connect(_settings(llama_server, prompt_style="base"))
    pieces: list[str] = []
    full = remote.generate(
        PROMPT, 12, time.monotonic() + 120, on_token=lambda p: pieces.append(p) is None
    )
    assert len(pieces) > 1 and "".join(pieces) == full.text
    stopped = remote.generate(PROMPT, 12, time.monotonic() + 120, on_token=lambda p: False)
    assert stopped.finish_reason == "cancelled" and stopped.text == pieces[0]


def test_chat_style_goes_through_the_servers_chat_template(
    llama_server: LlamaCppServer, gguf: Path
) -> None:
    """Chat prompts go to /chat/completions and the server applies the GGUF's chat template,
    as the in-process model does. (The default base model ends its turn at once in chat form,
    so this checks the route and the agreement, not the wording.)"""
    remote = OpenAIGenerator.connect(_settings(llama_server))  # auto: chat for a remote model
    assert remote.style == "chat"
    local = LlamaCppGenerator.load(
        load_settings(generator={"model_path": gguf, "n_threads": 1}).generator, gguf.parent
    )
    prompt = Prompt("chat", messages=(("user", "Name the capital of France in one word."),))
    got = remote.generate(prompt, 8, time.monotonic() + 120)
    local.style = "chat"
    want = local.generate(prompt, 8, time.monotonic() + 120)
    assert got.text == want.text and got.finish_reason == "stop"


def test_answers_through_the_endpoint_are_verified_here_and_an_outage_is_503(
    settings: Settings, embedder: Embedder, gguf: Path
) -> None:
    server = LlamaCppServer(gguf, alias="gemma-remote").start()
    try:
        build_pipeline(settings, embedder).run([EXAMPLES])
        generator = OpenAIGenerator.connect(_settings(server, prompt_style="base"))
        rag = assemble(settings, embedder, generator)
        with TestClient(app=create_app(settings, rag), raise_server_exceptions=False) as client:
            client.headers.update(bearer(add_key(settings)))
            ready = client.get("/readyz")
            assert (
                ready.status_code == 200 and ready.json()["checks"]["generator"] == "gemma-remote"
            )
            question = {"question": "How many days of paid annual leave do employees get?"}
            answer = client.post("/v1/ask", json=question)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["model"] == "gemma-remote"
            assert body["status"] in {"answered", "extractive"} and "27 days" in body["answer"]
            assert body["usage"]["prompt_tokens"] > 0
            for citation in body["citations"]:  # verification ran here, on our passages
                assert citation["document_id"] == "leave-policy.docx"

            server.kill()
            assert client.get("/readyz").status_code == 503
            down = client.post("/v1/ask", json=question)
            assert down.status_code == 503 and down.headers["retry-after"]
            assert down.json()["title"] == "Generator unavailable"
    finally:
        server.kill()
