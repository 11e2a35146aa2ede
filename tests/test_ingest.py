"""The ingestion pipeline and rag-ingest against the real embedder and a real Chroma in a temp dir."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from ingest.cli import run as ingest_cli
from ingest.pipeline import Pipeline
from rag_core.errors import EmbedderMismatchError
from rag_core.settings import Settings
from rag_core.store import Chunk, ChunkStore, DocumentState, open_client
from tests.conftest import make_docx, make_pdf


def snapshot(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    """chunk id -> (document id, ingestion time) for every record in the collection."""
    got = pipeline.store.collection.get(include=["metadatas"])  # type: ignore[list-item]
    return {
        cid: (str(m["document_id"]), str(m["ingested_at"]))
        for cid, m in zip(got["ids"], got["metadatas"] or [], strict=True)
    }


def all_chunks(pipeline: Pipeline) -> list[Chunk]:
    got = pipeline.store.collection.get(include=["metadatas", "documents"])  # type: ignore[list-item]
    return [
        Chunk.from_record(cid, doc, meta)
        for cid, doc, meta in zip(
            got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
        )
    ]


def test_every_format_is_ingested_with_full_chunk_records(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    pipeline = make_pipeline()
    report = pipeline.run([corpus])
    assert report.failed == [] and report.skipped == []
    assert report.added == 5 and report.chunks == pipeline.store.count() > 5
    chunks = all_chunks(pipeline)
    assert {c.document_id for c in chunks} == {
        "expenses-policy.pdf", "leave-policy.docx", "it-security.html", "onboarding.md",
        "office-facilities.txt",
    }  # fmt: skip
    for c in chunks:
        assert c.source == c.document_id and c.title and c.ingested_at
        assert len(c.content_hash) == 64 and 0 <= c.start < c.end
        assert c.end - c.start == len(c.text)
        assert pipeline.embedder.count_tokens(c.text) <= pipeline.embedder.max_tokens - 2
    pdf = [c for c in chunks if c.document_id == "expenses-policy.pdf"]
    assert {c.page for c in pdf} == {1, 2, 3}
    assert next(c for c in pdf if "€68" in c.text).page == 3
    assert any(c.section for c in chunks if c.document_id == "onboarding.md")
    assert all(c.page is None for c in chunks if c.document_id != "expenses-policy.pdf")
    # A heading inside a chunk is stored with it, read back from the store, and names the
    # section of what follows it.
    inside = [c for c in chunks if c.headings]
    assert inside
    for c in inside:
        for at, heading in c.headings:
            assert c.start <= at < c.end
            assert c.text[at - c.start :].lstrip("# ").startswith(heading)  # Markdown's "## "
            assert c.section_at(at) == heading and c.section_at(c.start) == c.section


def test_a_chunk_record_without_readable_headings_keeps_its_section() -> None:
    """Chunks of an older pipeline have no `headings`; a damaged value reads as none."""
    chunk = Chunk(
        chunk_id="c", document_id="d", source="d", title="T", text="x", start=0, end=1,
        chunk_index=0, chunk_count=1, content_hash="h", pipeline="p", ingested_at="t",
        section="Scope", headings=((40, "Duties"),),
    )  # fmt: skip
    meta = chunk.metadata()
    assert Chunk.from_record("c", "x", meta) == chunk
    for damaged in ("[[1", '[["x", 1]]', 7):
        back = Chunk.from_record("c", "x", {**meta, "headings": damaged})
        assert back.headings == () and back.section_at(50) == "Scope"


def test_reingesting_unchanged_files_writes_nothing(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    before = snapshot(pipeline)
    report = pipeline.run([corpus])
    assert (report.added, report.updated, report.unchanged, report.chunks) == (0, 0, 5, 0)
    assert snapshot(pipeline) == before  # same ids, and not even rewritten (same ingest times)


def test_a_changed_file_replaces_exactly_its_own_chunks(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    before = snapshot(pipeline)
    md = corpus / "onboarding.md"
    md.write_text(md.read_text().replace("09:30", "08:45"))
    report = pipeline.run([corpus])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)
    after = snapshot(pipeline)
    others_before = {k: v for k, v in before.items() if v[0] != "onboarding.md"}
    others_after = {k: v for k, v in after.items() if v[0] != "onboarding.md"}
    assert others_after == others_before
    texts = [c.text for c in all_chunks(pipeline) if c.document_id == "onboarding.md"]
    assert any("08:45" in t for t in texts) and not any("09:30" in t for t in texts)


class ReadBefore:
    """The store as seen by a writer that read the document states before another writer wrote:
    what two API replicas taking an upload of one name at the same moment each see. Every other
    call goes to the real store."""

    def __init__(self, store: ChunkStore, states: dict[str, DocumentState]) -> None:
        self._store, self._states = store, states

    def document_states(self) -> dict[str, DocumentState]:
        return self._states

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _versions_of(pipeline: Pipeline, document_id: str) -> tuple[set[str], list[str]]:
    """The content hashes stored for the document, and its chunk texts."""
    chunks = [c for c in all_chunks(pipeline) if c.document_id == document_id]
    return {c.content_hash for c in chunks}, [c.text for c in chunks]


@pytest.mark.parametrize("later", ["first", "second"])
def test_writers_that_raced_over_one_document_leave_exactly_the_newest(
    make_pipeline: Callable[..., Pipeline], corpus: Path, later: str
) -> None:
    """Both writers read the store before either wrote (a Chroma server takes no lock), each
    writes its own version of onboarding.md, and each settles after its write: one version stays,
    the one written with the later clock, whichever of the two wrote first."""
    pipeline = make_pipeline()
    # The version both replace is stamped before either racer's clock (with the wall clock it
    # was stamped after them once the day of T0 passed 09:05, and the test failed).
    pipeline.clock = lambda: T0
    pipeline.run([corpus])
    store, read = pipeline.store, pipeline.store.document_states()
    md = corpus / "onboarding.md"
    original = md.read_text()
    clocks = {"first": T0 + timedelta(minutes=5), "second": T0 + timedelta(minutes=1)}
    if later == "second":
        clocks = {"first": T0 + timedelta(minutes=1), "second": T0 + timedelta(minutes=5)}
    for writer, start in (("first", "08:45"), ("second", "10:15")):
        md.write_text(original.replace("09:30", start))
        racer = make_pipeline()
        racer.store = cast(ChunkStore, ReadBefore(store, read))
        racer.clock = lambda at=clocks[writer]: at
        assert racer.run([corpus]).updated == 1
    hashes, texts = _versions_of(pipeline, "onboarding.md")
    kept, lost = ("08:45", "10:15") if later == "first" else ("10:15", "08:45")
    assert len(hashes) == 1, "both versions' passages are stored"
    assert any(kept in t for t in texts) and not any(lost in t or "09:30" in t for t in texts)
    state = store.document_states()["onboarding.md"]
    assert state.chunk_counts == {len(state.chunk_ids)}  # the version kept is whole


def test_a_reingest_replaces_a_version_stamped_by_a_clock_running_ahead(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    """One after the other, the newer write wins even when its machine's clock is behind the one
    that wrote the version it replaces (another replica, an hour ahead)."""
    ahead = make_pipeline()
    ahead.clock = lambda: T0 + timedelta(hours=1)
    ahead.run([corpus])
    md = corpus / "onboarding.md"
    md.write_text(md.read_text().replace("09:30", "08:45"))
    behind = make_pipeline()
    behind.clock = lambda: T0
    assert behind.run([corpus]).updated == 1
    hashes, texts = _versions_of(behind, "onboarding.md")
    assert len(hashes) == 1
    assert any("08:45" in t for t in texts) and not any("09:30" in t for t in texts)
    stamps = {c.ingested_at for c in all_chunks(behind) if c.document_id == "onboarding.md"}
    assert stamps == {(T0 + timedelta(hours=1, seconds=1)).isoformat(timespec="seconds")}


def test_sync_removes_documents_whose_files_vanished(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    (corpus / "leave-policy.docx").unlink()
    assert pipeline.run([corpus]).deleted == 0  # without --sync nothing is removed
    assert "leave-policy.docx" in {d for d, _ in snapshot(pipeline).values()}
    report = pipeline.run([corpus], sync=True)
    assert report.deleted == 1
    assert "leave-policy.docx" not in {d for d, _ in snapshot(pipeline).values()}


def test_a_document_left_half_written_is_completed_on_rerun(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    """What a kill -9 between two upserts leaves behind: some chunks missing, old ones present."""
    pipeline = make_pipeline()
    pipeline.run([corpus])
    clean = set(snapshot(pipeline))
    victim = sorted(i for i, (d, _) in snapshot(pipeline).items() if d == "expenses-policy.pdf")
    pipeline.store.delete_ids(victim[:2])
    report = pipeline.run([corpus])
    assert report.updated == 1 and report.unchanged == 4
    assert set(snapshot(pipeline)) == clean


def test_bad_files_are_reported_by_name_and_the_rest_ingested(
    settings: Settings, embedder: object, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage that is not a pdf")
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (corpus / ".hidden.md").write_text("# hidden\n\nnot ingested")
    code = ingest_cli([str(corpus), "--json"], settings)
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert set(summary) >= {
        "added",
        "updated",
        "unchanged",
        "deleted",
        "failed",
        "chunks",
        "seconds",
    }
    assert summary["added"] == 5
    failed = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(failed) == {"broken.pdf", "empty.md"}
    assert "PDF" in failed["broken.pdf"] and "empty" in failed["empty.md"]
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["photo.jpg"]


def test_oversized_files_are_refused(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "huge.txt").write_text("word " * 300_000)
    (folder / "small.txt").write_text("A small file about bicycles.")
    pipeline = make_pipeline(ingest=Settings().ingest.model_copy(update={"max_file_mb": 1}))
    report = pipeline.run([folder])
    assert [Path(p.path).name for p in report.failed] == ["huge.txt"]
    assert "too large" in report.failed[0].error and report.added == 1


def test_links_leaving_the_root_are_skipped(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("Outside the root: do not ingest.")
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("Inside the root.")
    (root / "link.txt").symlink_to(outside)
    report = pipeline_run = make_pipeline().run([root])
    assert pipeline_run.added == 1
    assert [Path(p.path).name for p in report.skipped] == ["link.txt"]


def test_new_pdf_and_docx_in_nested_folders_get_relative_ids(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    (root / "hr" / "2026").mkdir(parents=True)
    make_pdf(root / "hr" / "2026" / "handbook.pdf", ["Page one text.", "Page two text."])
    make_docx(root / "hr" / "rota.docx", "Rota", ["The night shift starts at 22:00."])
    pipeline = make_pipeline()
    pipeline.run([root])
    assert {d for d, _ in snapshot(pipeline).values()} == {"hr/2026/handbook.pdf", "hr/rota.docx"}


def test_a_collection_refuses_a_different_embedder(
    make_pipeline: Callable[..., Pipeline], settings: Settings, corpus: Path, embedder: object
) -> None:
    make_pipeline().run([corpus])
    from rag_core.embedding import EmbedderIdentity

    with pytest.raises(EmbedderMismatchError) as info:
        ChunkStore(open_client(settings), settings.collection, EmbedderIdentity("bge-small", 512))
    message = str(info.value)
    assert "all-MiniLM-L6-v2 (384-d)" in message and "bge-small (512-d)" in message


def test_cli_refuses_a_different_embedder_with_exit_code_2(
    settings: Settings, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ingest_cli([str(corpus), "--json"], settings) == 0
    other = settings.model_copy(
        update={"embedder": settings.embedder.model_copy(update={"name": "other-model"})}
    )
    assert ingest_cli([str(corpus)], other) == 2
    assert "other-model" in capsys.readouterr().err


def test_collections_are_separate(
    settings: Settings, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        ingest_cli([str(corpus / "onboarding.md"), "--collection", "hr-docs", "--json"], settings)
        == 0
    )
    assert json.loads(capsys.readouterr().out)["added"] == 1
    assert ingest_cli([str(corpus), "--json"], settings) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 5


def test_usage_errors_exit_with_2(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        ingest_cli([str(tmp_path / "does-not-exist")], settings)
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        ingest_cli([str(tmp_path), "--collection", "x"], settings)
    assert info.value.code == 2


def test_if_empty_skips_a_collection_that_has_chunks(
    settings: Settings, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ingest_cli([str(corpus / "onboarding.md"), "--if-empty", "--json"], settings) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1
    assert ingest_cli([str(corpus), "--if-empty", "--json"], settings) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 0


def test_an_empty_collection_made_elsewhere_is_claimed_for_our_embedder(
    make_pipeline: Callable[..., Pipeline], settings: Settings, corpus: Path
) -> None:
    open_client(settings).create_collection(settings.collection, embedding_function=None)
    report = make_pipeline().run([corpus / "onboarding.md"])
    assert report.added == 1


def test_a_sphinx_source_tree_is_walked_once_per_run(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file of a Sphinx source tree reads its links to the others as their titles, and a
    run walks the tree once: walked per file, a run over n files stats n x n of them (loading a
    tree of 2,000 took 71 s against 9 s, bench/sphinx_tree_bench.py)."""
    from ingest import sphinx_tree

    walks: list[Path] = []
    walk = sphinx_tree._sources
    monkeypatch.setattr(sphinx_tree, "_sources", lambda root: walks.append(root) or walk(root))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text("project = 'P'\n")
    for k in range(3):
        (docs / f"page{k}.rst").write_text(
            f".. _s-part{k}:\n\nPart number {k}\n=============\n\n"
            f"Read :ref:`s-part{(k + 1) % 3}` before the rest.\n"
        )
    pipeline = make_pipeline()
    assert pipeline.run([docs]).added == 3
    texts = "\n".join(c.text for c in all_chunks(pipeline))
    assert all(f"Read Part number {(k + 1) % 3} before" in texts for k in range(3))
    assert walks == [docs]
    # Outside a run (a file loaded alone) the tree is walked again, and an edit is read.
    (docs / "page1.rst").write_text(".. _s-part1:\n\nRenamed part\n============\n\nText.\n")
    from ingest.loaders import load

    page = docs / "page0.rst"
    assert "Read Renamed part before" in load(page, page.read_bytes()).text
