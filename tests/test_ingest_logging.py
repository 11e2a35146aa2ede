"""What ingestion writes to the log at the default level: our lines, not libraries' noise (15.10)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.cli import configure_logging
from tests.conftest import EXAMPLES
from tests.test_loaders import damaged_pdf


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@pytest.fixture
def server_log(settings: Settings) -> Iterator[io.StringIO]:
    """The server's own logging set-up at the default level; what it would write to stderr goes
    to the returned buffer. pytest's handlers are set aside (basicConfig(force=True) would close
    them) and put back afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    for handler in saved:
        root.removeHandler(handler)
    configure_logging(settings)
    [handler] = root.handlers
    buffer = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.stream = buffer
    try:
        yield buffer
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def test_ingesting_a_long_document_and_a_damaged_pdf_logs_no_library_noise(
    settings: Settings, embedder: Embedder, tmp_path: Path, server_log: io.StringIO
) -> None:
    """Before: transformers' "Token indices sequence length is longer than ... (701 > 512)"
    (read as truncation; it is only counting), a line per object pypdf repaired, and DEBUG
    lines from bm25s in an INFO log."""
    import bm25s

    assert settings.log_level == "info"
    # transformers logs through its own handler, not the root's; and warns once per tokenizer.
    transformers_log = Recorder()
    logging.getLogger("transformers").addHandler(transformers_log)
    getattr(embedder.tokenizer, "deprecation_warnings", {}).clear()
    root = tmp_path / "share"
    root.mkdir()
    long_text = "\n\n".join(
        (EXAMPLES / name).read_text() for name in ("onboarding.md", "office-facilities.txt")
    )
    (root / "long.md").write_text(long_text * 3)
    (root / "damaged.pdf").write_bytes(damaged_pdf(tmp_path))
    try:
        report = build_pipeline(settings, embedder).run([root])
    finally:
        logging.getLogger("transformers").removeHandler(transformers_log)
    assert report.failed == [] and report.added == 2
    bm25s.BM25().index(bm25s.tokenize([long_text], show_progress=False), show_progress=False)

    assert not [line for line in transformers_log.lines if "Token indices" in line]
    lines = server_log.getvalue().splitlines()
    assert not [line for line in lines if "DEBUG" in line]
    noise = [line for line in lines if "pypdf" in line]
    assert (
        len(noise) == 1 and "WARNING ingest.loaders: damaged.pdf: pypdf worked around" in noise[0]
    )
