"""Shared fixtures: the real embedder (loaded once), temp stores, and file makers for every format."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.build import build_pipeline
from ingest.pipeline import Pipeline
from rag_server.embedding import Embedder, load_embedder
from rag_server.generation import Generation, Prompt, PromptStyle
from rag_server.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs"


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The default embedder (its ONNX export made once per session, in a temporary models dir)."""
    return load_embedder(load_settings().embedder, tmp_path_factory.mktemp("models"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def make_pipeline(settings: Settings, embedder: Embedder) -> Callable[..., Pipeline]:
    def make(**overrides: object) -> Pipeline:
        return build_pipeline(settings.model_copy(update=overrides), embedder)

    return make


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

    def count_tokens(self, text: str) -> int:
        return len(text.split())

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
        self.finished.append("stop")
        return Generation(text, self.count_tokens(prompt.text), len(text.split()), "stop")


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedGenerator]]:
    yield ScriptedGenerator
