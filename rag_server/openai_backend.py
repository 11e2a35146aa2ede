"""A generator behind an OpenAI-compatible HTTP API (llama.cpp's server, vLLM, TGI, ...).

Only the writing moves out of the process: retrieval, the evidence gate and verification stay in
this service, exactly as with the in-process model. Plain httpx against the configured base URL,
not an SDK: there is no default endpoint, so nothing can ever fall back to a public cloud API.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from rag_core.errors import GeneratorUnavailableError
from rag_core.settings import GeneratorSettings
from rag_server.generation import Generation, Prompt, PromptStyle, drain

# No tokenizer for a remote model: estimate generously (English runs about 4 characters a token),
# so the prompt budget errs towards leaving a source out rather than overflowing the context.
_CHARS_PER_TOKEN = 3.0
_CHECK_TIMEOUT_S = 3.0


class OpenAIGenerator:
    """Streams completions from the endpoint; stops at the deadline or when the reader leaves."""

    def __init__(
        self,
        client: httpx.Client,
        model: str,
        style: PromptStyle,
        context_tokens: int,
        temperature: float,
    ) -> None:
        self.client = client
        self.model = model
        self.name = model
        self.style = style
        self.context_tokens = context_tokens
        self.temperature = temperature
        # The GenerationGate already serialises calls; the lock keeps the contract of the
        # in-process model (one generation at a time per instance) for any other caller.
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, settings: GeneratorSettings) -> OpenAIGenerator:
        """Cheap: nothing is sent until the first check or request."""
        assert settings.base_url is not None and settings.model is not None  # settings enforce
        headers = {"accept": "application/json"}
        if settings.api_key is not None:
            headers["authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        client = httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=settings.timeout_s,
            trust_env=False,  # no proxy from the environment: the endpoint is ours, in-cluster
        )
        # A remote model is assumed instruction-tuned, behind the server's own chat template.
        style: PromptStyle = "chat" if settings.prompt_style == "auto" else settings.prompt_style
        return cls(client, settings.model, style, settings.n_ctx, settings.temperature)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def check(self) -> None:
        """Readiness: the endpoint answers its model list."""
        try:
            response = self.client.get("models", timeout=_CHECK_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise GeneratorUnavailableError(
                f"generator endpoint {self.client.base_url} not reachable: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise GeneratorUnavailableError(
                f"generator endpoint {self.client.base_url} answered {response.status_code}"
            )

    def generate(
        self,
        prompt: Prompt,
        max_tokens: int,
        deadline: float,
        on_token: Callable[[str], bool] | None = None,
    ) -> Generation:
        with self._lock:
            usage: dict[str, Any] = {}
            reasons: list[str] = []

            def pieces() -> Iterator[str]:
                for piece, event in self._stream(prompt, max_tokens, deadline):
                    if event.get("usage"):  # the last report wins
                        usage.clear()
                        usage.update(event["usage"])
                    reasons.append((event.get("choices") or [{}])[0].get("finish_reason") or "")
                    if piece:
                        yield piece

            out: list[str] = []
            try:
                stopped = drain(pieces(), out, deadline, on_token)
            except httpx.TimeoutException as exc:
                if time.monotonic() < deadline:
                    raise GeneratorUnavailableError(f"generator endpoint timed out: {exc}") from exc
                stopped = "deadline"
            except httpx.HTTPError as exc:
                raise GeneratorUnavailableError(f"generator endpoint failed: {exc}") from exc
            finish = stopped or ("length" if "length" in reasons else "stop")
            text = "".join(out)
            prompt_tokens = int(usage.get("prompt_tokens") or self.count_tokens(prompt.text))
            completion_tokens = int(usage.get("completion_tokens") or self.count_tokens(text))
            return Generation(text, prompt_tokens, completion_tokens, finish)

    def _stream(
        self, prompt: Prompt, max_tokens: int, deadline: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(text piece, raw event) for each server-sent event until [DONE]."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        if prompt.stop:
            body["stop"] = list(prompt.stop)
        if prompt.style == "chat":
            path = "chat/completions"
            body["messages"] = [{"role": r, "content": c} for r, c in prompt.messages]
        else:
            path = "completions"
            body["prompt"] = prompt.text
        remaining = max(0.1, deadline - time.monotonic())
        timeout = httpx.Timeout(remaining, connect=min(remaining, 5.0))
        with self.client.stream("POST", path, json=body, timeout=timeout) as response:
            if response.status_code >= 400:
                detail = response.read().decode("utf-8", "replace")[:300]
                raise GeneratorUnavailableError(
                    f"generator endpoint answered {response.status_code}: {detail}"
                )
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                choice = (event.get("choices") or [{}])[0]
                piece = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                yield str(piece), event
