"""The keyword index as readers see it while writers work, over the real embedder, Chroma and app:
snapshots swapped whole and rebuilt in the background, every hit re-checked against the store,
and scores that nothing the caller may not read can move."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from ingest.pipeline import SIDECAR, Pipeline
from rag_core.access import Access
from rag_core.embedding import Embedder
from rag_core.originals import OriginalFiles
from rag_core.settings import Settings, load_settings
from rag_core.store import ChunkStore
from rag_server.answerability import Answerability
from rag_server.app import create_app
from rag_server.catalog import Corpus
from rag_server.rag import assemble
from rag_server.retrieval import (
    Filters,
    HybridRetriever,
    KeywordIndex,
    KeywordSnapshot,
    bm25_terms,
)
from tests.conftest import ScriptedGenerator, add_key, bearer

T = TypeVar("T")
IT_ONLY = Filters(access=Access(frozenset({"it"})))


class GatedIndex(KeywordIndex):
    """A real KeywordIndex whose rebuilds wait for `gate`: the test decides when one may finish."""

    def __init__(self, store: ChunkStore) -> None:
        super().__init__(store)
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.builds = 0

    def _build(self, previous: KeywordSnapshot | None) -> KeywordSnapshot:
        self.builds += 1
        self.started.set()
        assert self.gate.wait(timeout=120), "the test never opened the gate"
        return super()._build(previous)


def _promptly(call: Callable[[], T]) -> T:
    """`call()` in a thread; fails if it has not returned within 60 s (it would be waiting for
    the gated rebuild: a reader must never wait for one)."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the reader waited for the rebuild"
    return box[0]


def _write(root: Path, files: dict[str, str], stamps: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for folder, stamp in stamps.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / SIDECAR).write_text(stamp + "\n")


@pytest.fixture
def gated(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> Iterator[tuple[Pipeline, GatedIndex]]:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    keyword = GatedIndex(pipeline.store)
    keyword.refresh()
    yield pipeline, keyword
    keyword.gate.set()  # never leave a builder waiting


def test_a_reader_is_answered_from_the_previous_snapshot_while_the_rebuild_runs(
    gated: tuple[Pipeline, GatedIndex], corpus: Path
) -> None:
    """After each write a query is answered at once from the snapshot there was; the new one
    appears when built, and three writes during one rebuild cost one more rebuild, not three."""
    pipeline, keyword = gated
    before = keyword.current()
    keyword.gate.clear()
    keyword.started.clear()
    note = corpus / "travel-note.md"
    for place in ("Zanzibar", "Reykjavik", "Valparaiso"):
        note.write_text(f"# Travel note\n\nThe annual retreat is held in {place}.\n")
        pipeline.run([corpus])
        assert _promptly(lambda: keyword.search(place, 5, Filters())) == []  # noqa: B023
        assert keyword.current() is before
    assert keyword.started.wait(timeout=60)  # the rebuild was asked for, in the background
    builds = keyword.builds

    keyword.gate.set()
    after = keyword.refresh()
    assert after is not before and after.revision == pipeline.store.revision()
    assert [c.document_id for c, _ in keyword.search("Valparaiso", 5, Filters())] == [
        "travel-note.md"
    ]
    assert keyword.search("Zanzibar", 5, Filters()) == []
    assert keyword.builds <= builds + 1


def test_a_hit_the_store_no_longer_lets_the_caller_read_never_leaves_retrieval(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """A re-stamp takes a public document away from `it`; until the rebuild, the snapshot still
    holds it as public and BM25 finds it, but no search, listing or lookup returns it."""
    docs = tmp_path / "docs"
    _write(
        docs,
        {
            "notes/lantern.md": "# Lantern\n\nThe Wayfarer lantern is lit at dusk by the quay.\n",
            "public/hours.md": "# Hours\n\nThe office opens at nine and closes at five.\n",
        },
        {},
    )
    pipeline = build_pipeline(settings, embedder)
    pipeline.run([docs])
    keyword = GatedIndex(pipeline.store)
    retriever = HybridRetriever(pipeline.store, embedder, keyword)
    corpus = Corpus("test", pipeline.store, keyword, retriever, OriginalFiles(pipeline.store))
    question = "When is the Wayfarer lantern lit?"
    assert "notes/lantern.md" in {
        h.chunk.document_id for h in retriever.retrieve(question, 5, IT_ONLY)
    }

    keyword.gate.clear()
    _write(docs, {}, {"notes": "hr"})
    pipeline.run([docs])
    stale = keyword.current()
    assert "notes/lantern.md" in {c.document_id for c, _ in stale.search(question, 5, IT_ONLY)}

    hits = retriever.retrieve(question, 5, IT_ONLY)
    assert hits and "notes/lantern.md" not in {h.chunk.document_id for h in hits}
    assert [d.document_id for d in corpus.documents(IT_ONLY.access)] == ["public/hours.md"]
    assert corpus.document("notes/lantern.md", IT_ONLY.access) is None
    hr = Access(frozenset({"hr"}))
    assert corpus.document("notes/lantern.md", hr).groups == ("hr",)  # type: ignore[union-attr]
    assert keyword.current() is stale  # all of it answered while the rebuild was held


@pytest.mark.slow
def test_restamping_and_reingesting_under_concurrent_readers_never_shows_a_forbidden_document(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """One writer re-stamps and rewrites documents while readers query in threads. `secret` is
    always forbidden to the readers (hr, then legal, ...) and `open` always allowed (public, then
    it, ...); no search, listing or lookup may ever return `secret`."""
    docs = tmp_path / "docs"
    words = "falcon granite harbour juniper lantern meadow"

    def version(n: int) -> dict[str, str]:
        return {
            "secret/plan.md": f"# Plan {n}\n\nThe {words} plan, revision {n}, pays SECRETX{n}.\n",
            "open/notes.md": f"# Notes {n}\n\nThe {words} notes, revision {n}, are shared.\n",
        }

    _write(docs, version(0), {"secret": "hr"})
    pipeline = build_pipeline(settings, embedder)
    pipeline.run([docs])
    rag = assemble(settings, embedder, ScriptedGenerator(["-"]))
    corpus = rag.catalog.get()
    done = threading.Event()
    seen: list[str] = []
    queries = [0]
    failures: list[Exception] = []

    def read() -> None:
        try:
            while not done.is_set():
                for query in (words, "Which plan pays?", "granite harbour revision"):
                    hits = corpus.retriever.retrieve(query, 10, IT_ONLY)
                    seen.extend(h.chunk.document_id for h in hits)
                    seen.extend(h.chunk.text for h in hits)
                seen.extend(d.document_id for d in corpus.documents(IT_ONLY.access))
                if corpus.document("secret/plan.md", IT_ONLY.access) is not None:
                    seen.append("secret/plan.md")
                queries[0] += 1
        except Exception as exc:  # a read racing the writer must not fail (nor end silently)
            failures.append(exc)

    readers = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for n in range(1, 7):
            _write(
                docs,
                version(n),
                {"secret": "legal" if n % 2 else "hr", "open": "it" if n % 2 else ""},
            )
            assert not pipeline.run([docs]).failed
    finally:
        done.set()
        for reader in readers:
            reader.join(timeout=120)
    assert not failures, failures
    assert queries[0] > 0 and "open/notes.md" in seen
    assert not [s for s in seen if "secret/plan.md" in s or "SECRETX" in s]


# Two collections that differ only in `hr/bonus.md`, which the reader may not read: it shares
# the question's words, so statistics over every chunk would move the reader's scores and ranks.
PUBLIC = {
    "public/falcons.md": "# Falcons\n\nThe falcon nests near the harbour. Falcon chicks hatch in "
    "May, and the falcon season ends in June.\n",
    "public/harbour.md": "# Harbour\n\nThe harbour opens at dawn. Boats leave the harbour before "
    "the falcon hunts, and the harbour master logs each boat.\n",
    "public/quay.md": "# Quay\n\nThe granite quay is lit at dusk. A falcon statue stands on the "
    "quay near the harbour gate.\n",
    "public/market.md": "# Market\n\nThe fish market by the harbour sells granite tiles and "
    "falcon feathers on Fridays.\n",
    "public/tower.md": "# Tower\n\nThe granite tower above the harbour houses a falcon keeper "
    "and a lantern.\n",
    "public/ferry.md": "# Ferry\n\nThe ferry to the island leaves the harbour at noon; a falcon "
    "keeper rides it daily.\n",
}
FORBIDDEN = {
    "hr/bonus.md": "# Falcon bonus\n\nEvery falcon keeper gets a falcon bonus. Falcon falcon "
    "falcon: the falcon programme pays in May. Granite granite.\n",
}
# With statistics over every chunk, the forbidden document reorders the reader's search results
# for "falcon harbour" and moves the quote scores of the others (seen on the code before).
QUESTIONS = [
    "falcon harbour",
    "When do falcon chicks hatch near the harbour?",
    "What stands on the granite quay?",
    "When does the ferry leave the harbour?",
]


def _responses(
    root: Path,
    files: dict[str, str],
    embedder: Embedder,
    answerability: Answerability,
    scorer: str,
) -> dict[str, object]:
    docs = root / "docs"
    _write(docs, files, {"hr": "hr"})
    settings = load_settings(
        data_dir=root / "data",
        audit={"path": str(root / "audit.jsonl")},
        grounding={"answer_mode": "extract", "scorer": scorer, "gate_threshold": 0.0},
    )
    assert not build_pipeline(settings, embedder).run([docs]).failed
    rag = assemble(settings, embedder, ScriptedGenerator(["-"]), answerability)
    token = add_key(settings, groups=["it"])
    out: dict[str, object] = {}
    with TestClient(app=create_app(settings, rag)) as client:
        client.headers.update(bearer(token))
        for question in QUESTIONS:
            search = client.post("/v1/search", json={"query": question, "top_k": 10}).json()
            ask = client.post("/v1/ask", json={"question": question}).json()
            search.pop("timings_ms")
            ask.pop("timings_ms")
            out[f"search {question}"] = search
            out[f"ask {question}"] = ask
    corpus = rag.catalog.get()
    access = IT_ONLY.access
    sentences = [s for text in PUBLIC.values() for s in text.split(". ")]
    for question in QUESTIONS:
        keyword = corpus.keyword.search(question, 10, IT_ONLY)
        out[f"bm25 {question}"] = [(c.chunk_id, round(s, 9)) for c, s in keyword]
        score = rag.service.similarity_scorer(question, corpus.keyword.current(), access)
        out[f"quote scores {question}"] = [round(s, 6) for s in score(question, sentences)]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("scorer", ["similarity", "answer_model"])
def test_a_document_the_caller_may_not_read_changes_nothing_it_gets(
    tmp_path: Path, embedder: Embedder, answerability: Answerability, scorer: str
) -> None:
    """Search results, answers, quotes, BM25 scores and quote scores for a reader of `it` are
    the same whether or not the collection holds an `hr` document sharing the question's words."""
    without = _responses(tmp_path / "a", PUBLIC, embedder, answerability, scorer)
    with_forbidden = _responses(tmp_path / "b", PUBLIC | FORBIDDEN, embedder, answerability, scorer)
    assert any(without[f"bm25 {q}"] for q in QUESTIONS)
    for key, value in without.items():
        assert with_forbidden[key] == value, key


def test_an_all_groups_caller_gets_the_bm25s_scores(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    """Over the whole collection the statistics are bm25s's own (the library the index was built
    with before, and the answer model's combiner was fitted over): same scores, same ranking."""
    import bm25s

    pipeline = make_pipeline()
    pipeline.run([corpus])
    snapshot = KeywordIndex(pipeline.store).refresh()
    reference = bm25s.BM25()
    reference.index(bm25_terms([c.text for c in snapshot.chunks]), show_progress=False)
    for query in ("How many days of paid annual leave?", "VPN remote access", "per diem meals"):
        expected = reference.get_scores(bm25_terms([query])[0])
        got = {c.chunk_id: s for c, s in snapshot.search(query, len(snapshot.chunks), Filters())}
        assert got, query
        for row, chunk in enumerate(snapshot.chunks):
            assert got.get(chunk.chunk_id, 0.0) == pytest.approx(float(expected[row]), rel=1e-5)
