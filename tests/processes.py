"""Helpers for tests that run the real console scripts and a real Chroma server as processes.

Every HTTP call to our server goes through `call`, so request headers (API keys) live in one place.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent


def rag_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any RAG_* setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(data_dir), **extra})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_key(env: dict[str, str], key_id: str = "tester", groups: str = "*") -> str:
    """An admin key made the way an operator makes one (`rag-server keys add`); its token."""
    made = subprocess.run(
        [BIN / "rag-server", "keys", "add", "--id", key_id, "--role", "admin", "--groups", groups],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "shown only now" in made.stderr
    return made.stdout.strip()


def call(
    method: str, url: str, timeout: float = 120, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    """One request; with `token`, as that API key (the only place the header is made)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    return httpx.request(method, url, headers=headers, timeout=timeout, **kwargs)


def _wait_for(url: str, proc: subprocess.Popen[str], log: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if call("GET", url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready at {url} after {timeout:.0f}s")


@dataclass
class RagServer:
    """A `rag-server` process on a free loopback port."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    token: str | None = None  # made at start (an admin key reading every group) unless given
    # Output goes to a file: an unread pipe fills up and blocks the server mid-request.
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RagServer:
        if self.token is None:
            self.token = add_key(self.env, key_id=f"tester-{self.port}")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [BIN / "rag-server"], env={**self.env, "RAG_PORT": str(self.port)},
                stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 300) -> RagServer:
        assert self.proc is not None
        _wait_for(f"{self.base}/readyz", self.proc, self.log, "rag-server", timeout)
        return self

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("token", self.token)
        return call(method, self.base + path, **kwargs)

    def stop(self, timeout: float = 60) -> str:
        """SIGTERM, as Kubernetes sends it; returns the process's output."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        output = self.log.read_text()
        self.log.unlink(missing_ok=True)
        return output


@dataclass
class ChromaServer:
    """A real Chroma server (`chroma run` from the chromadb package) on loopback."""

    path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None

    @property
    def log(self) -> Path:
        return self.path.parent / f"{self.path.name}.log"

    def start(self, timeout: float = 60) -> ChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [BIN / "chroma", "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, cwd=self.path,
                stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        _wait_for(url, self.proc, self.log, "chroma run", timeout)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def settings_env(self) -> dict[str, str]:
        return {
            "RAG_STORE__MODE": "http",
            "RAG_STORE__HOST": "127.0.0.1",
            "RAG_STORE__PORT": str(self.port),
        }


@dataclass
class LlamaCppServer:
    """llama-cpp-python's own OpenAI-compatible server (the `server` extra) on loopback."""

    model: Path
    alias: str = "local-gguf"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 180) -> LlamaCppServer:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
                 "--model_alias", self.alias, "--host", "127.0.0.1", "--port", str(self.port),
                 "--n_ctx", "4096", "--n_threads", "1", "--seed", "0"],
                stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        _wait_for(f"{self.base_url}/models", self.proc, self.log, "llama_cpp.server", timeout)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
