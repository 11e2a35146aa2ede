"""Chunking stays linear and bounded on pathological text (issue 16.3), with the real tokenizer.

Speed itself is measured by bench/chunking_bench.py; these tests pin the structural property that
makes it linear (the splitter never sees more than one bounded window) and what a client or a
bulk run sees when text cannot be split.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.chunking import WINDOW_CHARS, Chunker, Span, windows
from ingest.loaders import LoadedDocument, load
from ingest.pipeline import Pipeline
from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, ScriptedGenerator, add_key, bearer

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "

PATHOLOGICAL = {
    "one sentence repeated": SENTENCE * 3_000,  # 195 kB, no paragraph break
    "no punctuation": "word " * 40_000,
    "no whitespace": "x" * 100_000,
    "base64 blob in prose": "See the image. " + "QUJD" * 30_000 + " Done.",
}


def _uncovered(text: str, spans: list[Span]) -> str:
    """What the document says that no chunk holds (whitespace aside)."""
    covered = [False] * len(text)
    for s in spans:
        assert text[s.start : s.end] == s.text
        covered[s.start : s.end] = [True] * (s.end - s.start)
    return "".join(
        ch for ch, seen in zip(text, covered, strict=True) if not seen and not ch.isspace()
    )


def _examples_text() -> str:
    return "\n\n".join(load(p, p.read_bytes()).text for p in sorted(EXAMPLES.iterdir()))


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_the_splitter_is_never_handed_more_than_one_window(embedder: Embedder, name: str) -> None:
    """The splitter tokenizes whatever it is handed in one piece first (and punkt scans a whole
    paragraph under a 5 s timeout): handed a 20 MB paragraph, it ran out of time after 26 s and
    kept 1.6 GB. The longest text it tokenizes is the measure of what it was handed."""
    longest = 0

    def tokenize(text: str) -> list[str]:
        nonlocal longest
        longest = max(longest, len(text))
        return embedder.tokenize(text)

    text = PATHOLOGICAL[name]
    spans = Chunker(tokenize, 192, 24).split(LoadedDocument(text, name))
    assert 0 < longest <= WINDOW_CHARS < len(text)
    assert all(text[s.start : s.end] == s.text for s in spans)
    # Every word made it into a chunk. (Where a chunk's text repeats, the splitter places it at
    # an earlier copy, so offsets alone cannot show that the end was reached.)
    assert sum(len("".join(s.text.split())) for s in spans) >= len("".join(text.split()))


@pytest.mark.parametrize("text", [*PATHOLOGICAL.values(), _examples_text() * 3])
def test_windows_tile_the_text_cutting_at_paragraphs_else_sentences_else_spaces(text: str) -> None:
    limit = 5_000
    cuts = list(windows(text, 7, len(text), limit))
    assert cuts[0][0] == 7 and cuts[-1][1] == len(text)
    assert all(a < b <= a + limit for a, b in cuts)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(cuts))
    for a, b in cuts[:-1]:
        region = text[a + limit // 2 : a + limit]  # where a cut may fall
        if "\n\n" in region:
            assert text[b - 2 : b] == "\n\n"
        elif ". " in region:
            assert text[b - 2 : b] == ". "
        elif any(ch.isspace() for ch in region):
            assert text[b - 1].isspace()
        else:
            assert b == a + limit


def test_small_windows_still_give_exact_offsets_that_fit_the_embedder(embedder: Embedder) -> None:
    """Chunks never cross a window, so a long document split with small windows must still map
    every chunk back to its exact text, lose nothing and fit the embedder."""
    text = _examples_text() * 2
    document = LoadedDocument(text, "examples")
    spans = Chunker(embedder.tokenize, 64, 8, window_chars=700).split(document)
    assert [s.index for s in spans] == list(range(len(spans)))
    assert all(text[s.start : s.end] == s.text and s.text.strip() for s in spans)
    assert all(a.start < b.start for a, b in itertools.pairwise(spans))
    assert _uncovered(text, spans) == ""
    assert max(embedder.count_tokens(s.text) for s in spans) <= 64


@pytest.fixture
def splitter_times_out(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make punkt's own regex timeout trip on any paragraph it scans, as it did on a 20 MB one:
    the real splitter then fails the real way (TimeoutError) on text of test size."""
    from nltk import redos

    monkeypatch.setattr(redos, "DEFAULT_TIMEOUT", 1e-9)
    yield


LONG_PARAGRAPH = "Lanterns are lit at dusk. " * 400  # well over one chunk: punkt must split it


def test_text_the_splitter_cannot_split_is_reported_by_name_and_the_rest_ingested(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path, splitter_times_out: None
) -> None:
    """Before: the splitter's TimeoutError escaped the pipeline and ended the whole bulk run."""
    root = tmp_path / "share"
    root.mkdir()
    (root / "lanterns.md").write_text(LONG_PARAGRAPH)
    (root / "short.txt").write_text("The car park opens at seven.")
    report = make_pipeline().run([root])
    assert report.added == 1
    [problem] = report.failed
    assert Path(problem.path).name == "lanterns.md"
    assert "could not be split into chunks" in problem.error and "TimeoutError" in problem.error


def test_an_upload_the_splitter_cannot_split_is_a_422_naming_the_file(
    settings: Settings, embedder: Embedder, splitter_times_out: None
) -> None:
    """Before: a 500 from the splitter's TimeoutError."""
    rag = assemble(settings, embedder, ScriptedGenerator(["-"]))
    with TestClient(app=create_app(settings, rag), raise_server_exceptions=False) as client:
        client.headers.update(bearer(add_key(settings, "admin")))
        r = client.post(
            "/v1/documents",
            files={"file": ("lanterns.md", LONG_PARAGRAPH.encode(), "text/markdown")},
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        detail = r.json()["detail"]
        assert detail.startswith("lanterns.md: ") and "could not be split" in detail
        assert rag.catalog.get().store.count() == 0


def test_a_chunk_knows_where_its_code_is_and_keeps_it_through_the_store(embedder: Embedder) -> None:
    """A code block longer than a chunk is cut between chunks: each chunk records the part of the
    block it holds, in document offsets, and the record Chroma stores gives the same back."""
    from rag_core.records import Chunk

    listing = "\n".join(f"    total = total + item_{i}  # step {i}" for i in range(60))
    markdown = f"# Sums\n\nAdd them up like this:\n\n```\n{listing}\n```\n\nThat is all.\n"
    document = load(Path("sums.md"), markdown.encode())
    ((start, end),) = document.code
    assert document.text[start:end] == listing
    spans = Chunker(embedder.tokenize, 64, 8).split(document)
    holding = [s for s in spans if s.code]
    assert len(holding) > 2  # the listing runs over several chunks
    for span in spans:
        for lo, hi in span.code:
            assert span.start <= lo < hi <= span.end and start <= lo and hi <= end
        if span.start >= end or span.end <= start:
            assert span.code == ()
    assert min(lo for s in holding for lo, _ in s.code) == start
    assert max(hi for s in holding for _, hi in s.code) == end
    chunk = Chunk(
        chunk_id="c", document_id="sums.md", source="sums.md", title="Sums", text=holding[1].text,
        start=holding[1].start, end=holding[1].end, chunk_index=holding[1].index,
        chunk_count=len(spans), content_hash="h", pipeline="p", ingested_at="t",
        code=holding[1].code,
    )  # fmt: skip
    assert Chunk.from_record("c", chunk.text, chunk.metadata()).code == holding[1].code
    assert Chunk.from_record("c", "x", {**chunk.metadata(), "code": "[[1, "}).code == ()


def test_a_chunk_that_opens_with_its_heading_lists_it(embedder: Embedder) -> None:
    """The onboarding guide's "Equipment and Accounts" chunk began with its heading, yet listed
    none at its start: grounding read the heading as a sentence, and a refusal quoted it as the
    passage's closest sentence."""
    document = load(EXAMPLES / "onboarding.md", (EXAMPLES / "onboarding.md").read_bytes())
    spans = Chunker(embedder.tokenize, 256, 32).split(document)
    opening = [s for s in spans if any(s.text.startswith(h) for _, h in document.headings)]
    assert opening  # the example has chunks that open with a heading
    for span in spans:
        inside = [(at, h) for at, h in document.headings if span.start <= at < span.end]
        assert list(span.headings) == inside
