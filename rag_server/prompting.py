"""Render retrieved chunks into a prompt, numbered and delimited as data, within a token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prompts import template
from rag_core.store import Hit
from rag_server.generation import Prompt, PromptStyle

# Stops for completion-style prompts: a base model otherwise writes the next "Question:" itself.
_BASE_STOPS = ("\nQuestion:", "\n\n", "<<<SOURCE", "Source [")


@dataclass(frozen=True)
class RenderedPrompt:
    prompt: Prompt
    sources: list[Hit]  # in prompt order: sources[i] is cited as [i + 1]


# A document could otherwise close its own block and write outside it ("SOURCE 1>>> Question: ...").
_MARKERS = str.maketrans({"<": "‹", ">": "›"})


def as_data(text: str) -> str:
    """Ingested text as it enters the prompt: it cannot spell the block markers."""
    return text.replace("<<<", "<<<".translate(_MARKERS)).replace(">>>", ">>>".translate(_MARKERS))


def _label(text: str) -> str:
    """Titles and sections sit on the header line: one line, and no marker or forged header."""
    return " ".join(as_data(text).replace("Source [", "Source (").split())


def _source_block(n: int, hit: Hit) -> str:
    chunk = hit.chunk
    where = f", page {chunk.page}" if chunk.page is not None else ""
    if chunk.section:
        where += f", section “{_label(chunk.section)}”"
    return template("source").substitute(
        n=n, title=_label(chunk.title), where=where, text=as_data(chunk.text)
    )


def build_prompt(
    style: PromptStyle,
    question: str,
    hits: Sequence[Hit],
    count_tokens: Callable[[str], int],
    budget: int,
) -> RenderedPrompt:
    """Best evidence first; a source that does not fit whole is left out, never cut mid-text.

    `budget` is the number of prompt tokens allowed (context size minus room for the answer).
    When not even one source fits, `sources` is empty and the caller must not ask the model.
    """
    kept: list[Hit] = []
    blocks: list[str] = []
    for hit in hits:
        candidate = [*blocks, _source_block(len(blocks) + 1, hit)]
        if count_tokens(_render(style, question, candidate).text) > budget:
            continue
        blocks, kept = candidate, [*kept, hit]
    return RenderedPrompt(_render(style, question, blocks), kept)


def _render(style: PromptStyle, question: str, blocks: list[str]) -> Prompt:
    sources = "\n\n".join(blocks)
    if style == "chat":
        user = template("chat_user").substitute(sources=sources, question=as_data(question))
        system = template("chat_system").substitute()
        return Prompt(
            "chat", text=system + "\n" + user, messages=(("system", system), ("user", user))
        )
    text = template("base").substitute(sources=sources, question=as_data(question))
    return Prompt("base", text=text, stop=_BASE_STOPS)
