"""The OpenAI-compatible endpoint, driven by the official `openai` client over the real app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import openai
import pytest
from litestar.testing import TestClient

from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import ScriptedGenerator, add_key

QUESTION = "What is the maximum hotel cost per night?"
SUPPORTED = "Hotel stays are capped at €165 per night [1]."
INVENTED = "The CEO approves every hotel booking personally [1]."


@pytest.fixture
def client(examples: Settings, embedder: Embedder) -> Iterator[openai.OpenAI]:
    tuned = examples
    generator = ScriptedGenerator([f"{SUPPORTED} {INVENTED}"])
    app = create_app(tuned, assemble(tuned, embedder, generator))
    with TestClient(app=app, raise_server_exceptions=False) as http:
        # The test client is an httpx.Client: the openai package talks to the app in-process.
        yield openai.OpenAI(
            base_url="http://testserver.local/v1",
            api_key=add_key(tuned),
            http_client=http,
            max_retries=0,
        )


def test_chat_completion_is_grounded_and_carries_citations(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="default",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": QUESTION},
        ],
    )
    text = completion.choices[0].message.content or ""
    assert "€165" in text and "[1]" in text
    assert "CEO" not in text  # the invented sentence was removed before it left the server
    extra = completion.model_extra or {}
    rag = extra["rag"]
    assert rag["status"] == "answered"
    assert rag["read_as"] is None  # searched for as asked
    citation = rag["citations"][0]
    assert citation["document_id"] == "expenses-policy.pdf" and citation["page"] is not None
    assert "165" in citation["quote"]


def test_streaming_sends_only_verified_text(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    pieces: list[str] = []
    extras: list[dict[str, object]] = []
    finish = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            extras.append((chunk.model_extra or {})["rag"])
    text = "".join(pieces)
    assert "€165" in text and "CEO" not in text
    assert finish == "stop" and extras[0]["status"] == "answered"


def test_models_are_the_collections_and_unknown_ones_are_404(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["default"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-collection", messages=[{"role": "user", "content": QUESTION}]
        )


def test_bad_credentials_and_requests_are_refused(client: openai.OpenAI) -> None:
    bad = client.with_options(api_key="rag_nobody_" + "x" * 43)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="default", messages=[{"role": "assistant", "content": "no question here"}]
        )


REFUSED = "What was the winning score of the 1954 chess olympiad?"


@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_shows_a_chat_client_the_closest_passages(
    client: openai.OpenAI, stream: bool
) -> None:
    """A client that reads only `content` saw the bare refusal; the passages that came closest,
    which often hold what the asker wanted, were in `rag.related` alone."""
    messages = [{"role": "user", "content": REFUSED}]
    if stream:
        chunks = list(
            client.chat.completions.create(model="default", messages=messages, stream=True)
        )  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        rag = next(
            (c.model_extra or {})["rag"] for c in chunks if c.choices and c.choices[0].finish_reason
        )
    else:
        completion = client.chat.completions.create(model="default", messages=messages)  # type: ignore[arg-type]
        text = completion.choices[0].message.content or ""
        rag = (completion.model_extra or {})["rag"]
    assert rag["status"] == "insufficient_evidence" and rag["related"]
    refusal, _, listed = text.partition("\n\nClosest passages, which do not answer it:\n")
    assert refusal == "The documents do not contain an answer to this question."
    items = re.split(r"\n(?=\d+\. “)", listed)  # a quote's further lines are indented
    assert len(items) == len(rag["related"])
    for k, (item, related) in enumerate(zip(items, rag["related"], strict=True), start=1):
        assert all(line.startswith("   ") for line in item.split("\n")[1:])
        said = " ".join(item.split())
        assert said.startswith(f"{k}. “{' '.join(related['quote'].split())}” ({related['title']}")
        if related["page"] is not None:
            assert said.endswith(f", page {related['page']})")
