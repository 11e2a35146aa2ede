"""Hybrid retrieval over the real embedder and Chroma: fusion, filters, and a keyword index that
follows every ingest, update and delete."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.pipeline import Pipeline
from rag_core.store import SEARCH_EF, ChunkStore
from rag_server.retrieval import Filters, HybridRetriever, KeywordIndex


def _retriever(pipeline: Pipeline, fusion: str = "rrf") -> HybridRetriever:
    keyword = KeywordIndex(pipeline.store)
    return HybridRetriever(pipeline.store, pipeline.embedder, keyword, fusion)  # type: ignore[arg-type]


def _ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.chunk.document_id for h in hits]


def test_keyword_search_finds_a_rare_exact_term(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    keyword = KeywordIndex(pipeline.store)
    (chunk, score), *_ = keyword.search("Wayfarer", 5, Filters())
    assert chunk.document_id == "expenses-policy.pdf" and "Wayfarer" in chunk.text and score > 0
    assert keyword.search("zyzzyva quux", 5, Filters()) == []


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_fused_results_carry_dense_cosine_for_every_hit(
    make_pipeline: Callable[..., Pipeline], corpus: Path, fusion: str
) -> None:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    hits = _retriever(pipeline, fusion).retrieve("Which VPN is used for remote access?", 5)
    assert len(hits) == 5 and len({h.chunk.chunk_id for h in hits}) == 5
    assert hits[0].chunk.document_id == "it-security.html"
    assert all(-1.0 <= h.score <= 1.0 for h in hits)


def test_the_keyword_index_follows_ingest_update_and_delete(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    """`refresh` (what a writer calls to read its own write) brings the snapshot to the store's
    revision; tests/test_keyword_snapshot.py covers readers, who do not wait."""
    pipeline = make_pipeline()
    pipeline.run([corpus])
    keyword = KeywordIndex(pipeline.store)
    assert keyword.search("Zanzibar", 5, Filters()) == []

    note = corpus / "travel-note.md"
    note.write_text("# Travel note\n\nThe annual retreat is held in Zanzibar.\n")
    pipeline.run([corpus])
    keyword.refresh()
    assert [c.document_id for c, _ in keyword.search("Zanzibar", 5, Filters())] == [
        "travel-note.md"
    ]

    note.write_text("# Travel note\n\nThe annual retreat is held in Reykjavik.\n")
    pipeline.run([corpus])
    keyword.refresh()
    assert keyword.search("Zanzibar", 5, Filters()) == []
    assert [c.document_id for c, _ in keyword.search("Reykjavik", 5, Filters())] == [
        "travel-note.md"
    ]

    note.unlink()
    pipeline.run([corpus], sync=True)
    assert {c.chunk_id for c in keyword.chunks} == set(pipeline.store.collection.get()["ids"])
    assert keyword.search("Reykjavik", 5, Filters()) == []


def test_filters_act_before_top_k_on_both_retrievers(
    make_pipeline: Callable[..., Pipeline], corpus: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.run([corpus])
    retriever = _retriever(pipeline)
    question = "How many days of paid annual leave?"
    assert _ids(retriever.retrieve(question, 1))[0] == "leave-policy.docx"
    hits = retriever.retrieve(question, 4, Filters(document_id=("onboarding.md",)))
    assert len(hits) == 4 and set(_ids(hits)) == {"onboarding.md"}
    sparse = retriever.keyword.search("leave", 10, Filters(source_prefix="office"))
    assert sparse and {c.document_id for c, _ in sparse} == {"office-facilities.txt"}
    paged = retriever.retrieve("per diem", 3, Filters(metadata={"page": 3}))
    assert paged and {h.chunk.page for h in paged} == {3}


def test_one_text_ingested_twice_takes_one_place_of_the_top_k(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    """A policy as Markdown and as HTML: both copies ranked first and second and filled the top
    two, so the second passage about the question never reached the answer."""
    text = (
        "The annual retreat is held in Zanzibar every March. Staff travel there by ferry from the"
        " mainland, and the company pays the fare."
    )
    (tmp_path / "retreat.md").write_text(f"# Retreat\n\n{text}\n")
    (tmp_path / "retreat.html").write_text(f"<h1>Retreat</h1><p>{text}</p>")
    (tmp_path / "ferry.md").write_text(
        "# Ferries\n\nThe ferry to Zanzibar leaves the mainland twice a day.\n"
    )
    (tmp_path / "canteen.md").write_text("# Canteen\n\nLunch is served from noon.\n")
    pipeline = make_pipeline()
    pipeline.run([tmp_path])
    hits = _retriever(pipeline).retrieve("Where is the annual retreat held?", 2)
    assert len(hits) == 2
    assert hits[0].chunk.document_id in {"retreat.md", "retreat.html"}
    assert hits[1].chunk.document_id not in {"retreat.md", "retreat.html"}
    # With room for every passage, the other copy is still left out and nothing else is.
    everything = _ids(_retriever(pipeline).retrieve("Where is the annual retreat held?", 10))
    assert len(everything) == 3 and {"ferry.md", "canteen.md"} <= set(everything)


def test_a_sphinx_page_takes_its_source_copys_place(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    """A Sphinx build holds each page and, under `_sources`, the reST it came from. The copy
    ranked first (here its page also carries a footer), so answers cited
    `_sources/retreat.rst.txt`: the page is what a reader checks, and takes the copy's place,
    even when it ranks below the top k."""
    text = (
        "The annual retreat is held in Zanzibar every March. Staff travel there by ferry from the"
        " mainland, and the company pays the fare."
    )
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "retreat.rst.txt").write_text(f"Retreat\n=======\n\n{text}\n")
    (tmp_path / "retreat.html").write_text(
        f"<h1>Retreat</h1><p>{text}</p><footer>Copyright the company.</footer>"
    )
    (tmp_path / "canteen.html").write_text("<h1>Canteen</h1><p>Lunch is served from noon.</p>")
    pipeline = make_pipeline()
    pipeline.run([tmp_path])
    question = "Where is the annual retreat held?"
    for top_k in (1, 2):
        hits = _retriever(pipeline).retrieve(question, top_k)
        assert _ids(hits)[0] == "retreat.html"
        assert "_sources/retreat.rst.txt" not in _ids(hits)
    # Without the page, its copy is the passage.
    (tmp_path / "retreat.html").unlink()
    pipeline.run([tmp_path], sync=True)
    assert _ids(_retriever(pipeline).retrieve(question, 1)) == ["_sources/retreat.rst.txt"]


def test_new_collections_search_wide_and_a_writer_widens_an_older_one(
    make_pipeline: Callable[..., Pipeline], caplog: pytest.LogCaptureFixture
) -> None:
    """Chroma rebuilds the HNSW graph of the chunks written since its last save at every open,
    differently each time: at its default breadth (100) a passage fourth by exact cosine was
    missing from the top 60 in one open of five. A new collection searches at SEARCH_EF; a
    writer raises an older collection's breadth, and a reader leaves the store as it is, with a
    warning."""
    pipeline = make_pipeline()
    client = pipeline.store.client
    assert pipeline.store.collection.configuration_json["hnsw"]["ef_search"] == SEARCH_EF
    client.create_collection(
        "older", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )

    def breadth() -> int:
        return int(client.get_collection("older").configuration_json["hnsw"]["ef_search"])

    assert breadth() < SEARCH_EF
    with caplog.at_level(logging.WARNING, logger="rag_core.store"):
        ChunkStore(client, "older", pipeline.embedder.identity, create=False)
    assert breadth() < SEARCH_EF
    # ...but says so, and what raises it
    assert "searches 100 candidates, not 400" in caplog.text and "rag-ingest" in caplog.text
    ChunkStore(client, "older", pipeline.embedder.identity)
    assert breadth() == SEARCH_EF
