"""`answer_mode`: a base model is not asked to write (its sentences were mostly wrong on the dev
set); the answer is the best source sentence, quoted. An instruction-tuned model writes."""

from __future__ import annotations

import asyncio
import time

import pytest

from rag_core.embedding import Embedder
from rag_core.errors import OverloadedError
from rag_core.settings import Settings
from rag_server.rag import assemble
from rag_server.retrieval import Filters
from tests.conftest import ClientFor, ScriptedGenerator
from tests.test_api import _sse, ingested

__all__ = ["ingested"]  # a fixture, imported for pytest

QUESTION = "What time does the first day start?"
SUPPORTED = "The first day starts at 09:30 at the reception on floor 4."


def _mode(settings: Settings, mode: str) -> Settings:
    grounding = settings.grounding.model_copy(update={"answer_mode": mode})
    return settings.model_copy(update={"grounding": grounding})


def test_auto_quotes_the_sources_for_a_base_model_and_never_asks_it_to_write(
    ingested: Settings, client_for: ClientFor
) -> None:
    generator = ScriptedGenerator([SUPPORTED], style="base")
    body = (
        client_for(_mode(ingested, "auto"), generator)
        .post("/v1/ask", json={"question": QUESTION})
        .json()
    )
    assert generator.calls == []
    assert body["status"] == "extractive", body
    assert "09:30" in body["answer"]
    quote = body["citations"][0]["quote"]
    assert body["answer"] == f"{quote} [{body['citations'][0]['n']}]"
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    assert body["finish_reason"] is None
    assert "extract" in body["timings_ms"] and "generate" not in body["timings_ms"]


@pytest.mark.parametrize(("style", "mode"), [("chat", "auto"), ("base", "generate")])
def test_an_instruction_tuned_model_writes_and_generate_makes_any_model_write(
    ingested: Settings, client_for: ClientFor, style: str, mode: str
) -> None:
    generator = ScriptedGenerator([SUPPORTED], style=style)  # type: ignore[arg-type]
    body = (
        client_for(_mode(ingested, mode), generator)
        .post("/v1/ask", json={"question": QUESTION})
        .json()
    )
    assert len(generator.calls) == 1 and generator.calls[0].style == style
    assert body["status"] == "answered", body
    assert body["answer"].startswith("The first day starts at 09:30")


def test_extract_mode_still_refuses_below_the_gate(
    ingested: Settings, client_for: ClientFor
) -> None:
    generator = ScriptedGenerator([SUPPORTED])
    body = (
        client_for(_mode(ingested, "extract"), generator)
        .post("/v1/ask", json={"question": "What is the CEO's salary?"})
        .json()
    )
    assert body["status"] == "insufficient_evidence"
    assert body["answer"] == ingested.grounding.refusal and body["citations"] == []
    assert body["related"] and generator.calls == []


def test_a_streamed_extractive_answer_is_sources_then_final(
    ingested: Settings, client_for: ClientFor
) -> None:
    client = client_for(_mode(ingested, "extract"), ScriptedGenerator([SUPPORTED]))
    response = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    events = _sse(response.text)
    assert [kind for kind, _ in events] == ["sources", "final"]
    final = events[1][1]
    assert (
        isinstance(final, dict) and final["status"] == "extractive" and "09:30" in final["answer"]
    )


def test_quoting_takes_the_answer_slot_so_overload_is_refused_not_queued(
    ingested: Settings, embedder: Embedder
) -> None:
    generator = ScriptedGenerator([SUPPORTED])
    generator_settings = ingested.generator.model_copy(update={"queue_depth": 1})
    settings = _mode(ingested, "extract").model_copy(update={"generator": generator_settings})
    service = assemble(settings, embedder, generator).service

    async def scenario() -> str:
        async with service.gate.slot():  # the slot is busy with another answer
            first = asyncio.create_task(service.ask(QUESTION, Filters()))
            deadline = time.monotonic() + 30
            while service.gate.waiting < 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # until the first request waits in the queue
            with pytest.raises(OverloadedError):
                await service.ask(QUESTION, Filters())  # the queue (depth 1) is full
        return (await first).status

    assert asyncio.run(scenario()) == "extractive"
    assert generator.calls == []


def test_a_chat_template_and_an_instruct_name_in_metadata_or_file_name_make_a_chat_model() -> None:
    """SmolLM2-135M-Instruct's metadata names only its training mix; its file name says what it
    is. A model without a chat template is never prompted as a chat model."""
    from rag_server.generation import detect_style

    meta = {
        "tokenizer.chat_template": "{% for message in messages %}{{ message.content }}{% endfor %}",
        "general.name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "general.basename": "smollm2",
        "general.finetune": "8k-lc100k-mix1-ep2",
    }
    assert detect_style(meta, "SmolLM2-135M-Instruct.Q4_1.gguf") == "chat"
    assert detect_style(meta, "smollm2-135m.gguf") == "base"
    assert detect_style({"general.name": "Gemma 3 270m"}, "model-it.gguf") == "base"
