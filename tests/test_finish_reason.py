"""Why generation ended, as llama.cpp reports it, carried through the Generation result to
/v1/ask and to the OpenAI-compatible `finish_reason`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import openai
import pytest
from litestar.testing import TestClient

from rag_core.embedding import Embedder
from rag_core.settings import Settings, load_settings
from rag_server.app import create_app
from rag_server.generation import Generator, LlamaCppGenerator, Prompt
from rag_server.rag import assemble
from tests.conftest import ScriptedGenerator, add_key

QUESTION = "What is the maximum hotel cost per night?"
ANSWER = "Hotel stays are capped at €165 per night [1]."

OpenAIFor = Callable[[Settings, Generator], openai.OpenAI]


@pytest.fixture
def openai_for(embedder: Embedder) -> Iterator[OpenAIFor]:
    """The official `openai` client over the real app, with the given settings and model."""
    clients: list[TestClient] = []  # type: ignore[type-arg]

    def make(settings: Settings, generator: Generator) -> openai.OpenAI:
        app = create_app(settings, assemble(settings, embedder, generator))
        http = TestClient(app=app, raise_server_exceptions=False)
        http.__enter__()
        clients.append(http)
        return openai.OpenAI(
            base_url="http://testserver.local/v1",
            api_key=add_key(settings),
            http_client=http,  # type: ignore[arg-type]  # an httpx.Client subclass
            max_retries=0,
        )

    yield make
    for http in clients:
        http.__exit__(None, None, None)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppGenerator:
    return LlamaCppGenerator.load(load_settings().generator, tmp_path_factory.mktemp("models"))


def _finishes(client: openai.OpenAI) -> tuple[str, str | None]:
    """The finish_reason of a plain completion, and of the last chunk of a streamed one."""
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": QUESTION}
    ]
    plain = client.chat.completions.create(model="default", messages=messages)
    streamed = None
    for chunk in client.chat.completions.create(model="default", messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].finish_reason:
            streamed = chunk.choices[0].finish_reason
    return plain.choices[0].finish_reason, streamed


@pytest.mark.parametrize("finish", ["stop", "length"])
def test_chat_completions_say_how_the_model_finished(
    openai_for: OpenAIFor, examples: Settings, finish: str
) -> None:
    """It used to say "stop" whatever happened."""
    client = openai_for(examples, ScriptedGenerator([ANSWER], finish=finish))
    assert _finishes(client) == (finish, finish)


@pytest.mark.slow
def test_a_reply_cut_by_max_tokens_finishes_with_length(
    openai_for: OpenAIFor, examples: Settings, gemma: LlamaCppGenerator
) -> None:
    """The real model, allowed two tokens: llama.cpp reports "length", and so do we."""
    short = examples.generator.model_copy(update={"max_tokens": 2})
    client = openai_for(examples.model_copy(update={"generator": short}), gemma)
    assert _finishes(client) == ("length", "length")


@pytest.mark.slow
def test_the_model_stopping_on_its_own_near_max_tokens_is_stop_not_a_guess(
    gemma: LlamaCppGenerator,
) -> None:
    """ "length" used to be guessed from the number of streamed pieces, and llama.cpp streams one
    more piece than tokens (an empty one carrying the reason): a reply that ended one token
    short of the limit read as cut."""
    prompt = Prompt("base", text="Question: What colour is the sky?\nAnswer:", stop=("\n",))
    ended = gemma.generate(prompt, max_tokens=3, deadline=time.monotonic() + 60)
    assert ended.completion_tokens < 3  # precondition: it ended on its own, before the limit
    assert ended.finish_reason == "stop"
    cut = gemma.generate(prompt, max_tokens=1, deadline=time.monotonic() + 60)
    assert cut.finish_reason == "length"
