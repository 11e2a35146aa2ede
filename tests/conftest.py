"""Shared fixtures: the real embedder (loaded once), temp stores, and file makers for every format."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ingest.build import build_pipeline
from ingest.pipeline import Pipeline, discover
from rag_core.embedding import Embedder, load_embedder
from rag_core.settings import Settings, load_settings
from rag_server.answerability import Answerability
from rag_server.auth import Role, fresh_id, new_key, read_keys, write_keys
from rag_server.generation import Generation, Generator, Prompt, PromptStyle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs"


@pytest.fixture(scope="session", autouse=True)
def _no_developer_settings() -> Iterator[None]:
    """Tests see the documented defaults, not the RAG_* variables of whoever runs them (nor do
    the servers they start, which inherit this environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("RAG_")]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The default embedder (its ONNX export made once per session, in a temporary models dir)."""
    return load_embedder(load_settings().embedder, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def answerability(embedder: Embedder) -> Answerability:
    """The packaged answer model and combiner, loaded once per session like the embedder."""
    return Answerability.load(embedder)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Orchestration tests script the model's replies, so the model writes whatever its style
    (`answer_mode` "auto" would not ask a base model to); tests/test_answer_mode.py covers "auto"."""
    return load_settings(
        data_dir=tmp_path / "data",
        audit={"path": str(tmp_path / "audit.jsonl")},
        grounding={"answer_mode": "generate"},
    )


def add_key(
    settings: Settings,
    role: Role = "reader",
    groups: Iterable[str] = ("*",),
    collections: Iterable[str] | None = None,
    key_id: str | None = None,
) -> str:
    """A real API key in the settings' keys file; returns the secret token."""
    keys = read_keys(settings.keys_file)
    token, record = new_key(
        key_id or fresh_id(),
        role,
        frozenset(groups),
        None if collections is None else frozenset(collections),
    )
    write_keys(settings.keys_file, [*keys.values(), record])
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def examples(settings: Settings, embedder: Embedder) -> Settings:
    """The example documents ingested, with the evidence gate fixed at 0.3: tests of orchestration
    must not move when the calibrated default is changed."""
    build_pipeline(settings, embedder).run([EXAMPLES])
    grounding = settings.grounding.model_copy(update={"gate_threshold": 0.3})
    return settings.model_copy(update={"grounding": grounding})


@pytest.fixture
def make_pipeline(settings: Settings, embedder: Embedder) -> Callable[..., Pipeline]:
    def make(**overrides: object) -> Pipeline:
        return build_pipeline(settings.model_copy(update=overrides), embedder)

    return make


def clean_ids(pipeline: Pipeline, *roots: Path) -> set[str]:
    """The chunk ids a clean ingest of `roots` writes, computed without writing: the pipeline's
    own preparation of each file (ids depend on the files' content alone)."""
    ids: set[str] = set()
    for source in discover(roots)[0]:
        item = pipeline._prepare(source, None)
        assert item is not None
        ids |= {c.chunk_id for c in item.chunks}
    return ids


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the example documents that a test may edit."""
    target = tmp_path / "docs"
    shutil.copytree(EXAMPLES, target)
    return target


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real text-layer PDF, one string per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for page in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, page)
    pdf.output(str(path))
    return path


def make_docx(path: Path, heading: str, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


@dataclass
class ScriptedGenerator:
    """A real Generator with scripted replies and a record of every call (for orchestration tests)."""

    replies: list[str]
    name: str = "scripted"
    style: PromptStyle = "base"
    context_tokens: int = 4096
    delay_s: float = 0.0
    token_delay_s: float = 0.0
    calls: list[Prompt] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    # How a reply that ran to its end says it ended, as llama.cpp would ("stop", "length").
    finish: str = "stop"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def check(self) -> None:
        """Always ready."""

    def generate(
        self,
        prompt: Prompt,
        max_tokens: int,
        deadline: float,
        on_token: Callable[[str], bool] | None = None,
    ) -> Generation:
        self.calls.append(prompt)
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self.replies[min(len(self.calls), len(self.replies)) - 1]
        pieces = text.split(" ")
        for i, word in enumerate(pieces):
            time.sleep(self.token_delay_s)
            if on_token is not None and not on_token(word if i == 0 else " " + word):
                self.finished.append("cancelled")
                return Generation(" ".join(pieces[: i + 1]), 1, i + 1, "cancelled")
        self.finished.append(self.finish)
        return Generation(text, self.count_tokens(prompt.text), len(text.split()), self.finish)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedGenerator]]:
    yield ScriptedGenerator


@contextlib.contextmanager
def serve_app(app: Litestar) -> Iterator[str]:
    """The app on a real uvicorn server in a thread, on a free loopback port; yields its URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


ClientFor = Callable[..., TestClient]  # type: ignore[type-arg]


@pytest.fixture
def client_for(embedder: Embedder, answerability: Answerability) -> Iterator[ClientFor]:
    """Test clients over the real app, authenticated with an admin key that reads every group."""
    clients: list[TestClient] = []  # type: ignore[type-arg]

    def make(settings: Settings, generator: Generator) -> TestClient:  # type: ignore[type-arg]
        from rag_server.app import create_app
        from rag_server.rag import assemble

        rag = assemble(settings, embedder, generator, answerability)
        client = TestClient(app=create_app(settings, rag), raise_server_exceptions=False)
        client.headers.update(bearer(add_key(settings, "admin")))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
