"""Documents over HTTP: upload through the ingest pipeline, list, show, delete — real app and store."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.rag import Rag, assemble
from tests.conftest import EXAMPLES, ScriptedGenerator, add_key, bearer, make_pdf

FACT = "The Zanzibar office closes at 15:30 on Fridays for the quarterly lantern ceremony."


@pytest.fixture
def served(settings: Settings, embedder: Embedder) -> Iterator[tuple[TestClient, Rag]]:  # type: ignore[type-arg]
    limited = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_upload_mb": 0.5})}
    )
    rag = assemble(limited, embedder, ScriptedGenerator(["-"]))
    with TestClient(app=create_app(limited, rag), raise_server_exceptions=False) as client:
        client.headers.update(bearer(add_key(limited, "admin")))
        yield client, rag


def _kept_files(rag: Rag) -> set[tuple[str, str]]:
    """(document, content hash) of every file part kept in the store for the collection."""
    files = rag.catalog.get().files
    try:
        collection = rag.catalog.client.get_collection(files.name)
    except Exception:  # never created: nothing was kept
        return set()
    metas = collection.get(include=["metadatas"])["metadatas"] or []
    return {(str(m["document_id"]), str(m["content_hash"])) for m in metas}


def _search_ids(client: TestClient, query: str) -> list[str]:  # type: ignore[type-arg]
    r = client.post("/v1/search", json={"query": query, "top_k": 3})
    assert r.status_code == 200, r.text
    return [hit["document_id"] for hit in r.json()["results"]]


def test_own_writes_do_not_reopen_the_embedded_store_another_writers_do(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
    embedder: Embedder,
) -> None:
    """Each reopen of an embedded store leaves memory behind: a server replacing one upload again
    and again grew by about 4 MB per upload while it reopened after each. Its own uploads and
    deletes are already in its client, so they must not reopen it (and dense search still finds
    them); a write by another writer (rag-ingest: its own store and revision counter) must, or
    the server's dense search would miss those rows."""
    client, rag = served
    store = rag.catalog.get().store
    _search_ids(client, "office hours")  # the server has seen the store's revision
    opened = store.client
    question = embedder.embed_query("When does the Zanzibar office close on Fridays?")
    for n in range(3):
        body = f"# Office hours\n\n{FACT} Revision {n}.\n".encode()
        files = {"file": ("Friday hours.md", body, "text/markdown")}
        assert client.post("/v1/documents", files=files).status_code == 201
        _search_ids(client, "When does the Zanzibar office close on Fridays?")
        dense = store.query(question, 3)
        assert [h.chunk.text.endswith(f"Revision {n}.") for h in dense] == [True]
    assert client.delete("/v1/documents/uploads/Friday hours.md").status_code == 204
    _search_ids(client, "office hours")
    assert store.client is opened and store.query(question, 3) == []

    assert not build_pipeline(settings, embedder).run([EXAMPLES]).failed
    assert _search_ids(client, "How many weeks of parental leave?")
    assert store.client is not opened


def test_an_uploaded_document_is_searchable_then_deleted_everywhere(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    client, rag = served
    content = f"# Office hours\n\n{FACT}\n".encode()
    files = {"file": ("Friday hours.md", content, "text/markdown")}
    r = client.post("/v1/documents", files=files, data={"groups": "facilities"})
    assert r.status_code == 201, r.text
    body = r.json()
    doc_id = body["document"]["document_id"]
    assert doc_id == "uploads/Friday hours.md" and body["status"] == "added"
    assert body["document"]["groups"] == ["facilities"] and body["document"]["chunks"] >= 1
    # The original is kept in the store, where every replica finds it; not on this disk.
    corpus = rag.catalog.get()
    kept = corpus.files.read(doc_id, hashlib.sha256(content).hexdigest())
    assert kept is not None and kept.data == content and kept.name == "Friday hours.md"
    assert not (settings.uploads_dir / "default" / "Friday hours.md").exists()
    assert _search_ids(client, "When does the Zanzibar office close on Fridays?")[0] == doc_id

    # The same bytes again change nothing.
    assert (
        client.post("/v1/documents", files=files, data={"groups": "facilities"}).json()["status"]
        == "unchanged"
    )
    listed = client.get("/v1/documents").json()
    assert [d["document_id"] for d in listed["documents"]] == [doc_id] and listed["total"] == 1
    assert client.get(f"/v1/documents/{doc_id}").json()["title"] == "Office hours"

    assert client.delete(f"/v1/documents/{doc_id}").status_code == 204
    assert doc_id not in _search_ids(client, "Zanzibar office Friday lantern ceremony")
    assert rag.catalog.get().store.count() == 0  # no orphan chunks
    assert corpus.files.read(doc_id, hashlib.sha256(content).hexdigest()) is None
    assert _kept_files(rag) == set()  # nor orphan file parts
    assert client.get(f"/v1/documents/{doc_id}").status_code == 404
    assert client.delete(f"/v1/documents/{doc_id}").status_code == 404


def test_uploads_into_another_collection_stay_there(served: tuple[TestClient, Rag]) -> None:  # type: ignore[type-arg]
    client, _ = served
    files = {"file": ("hours.txt", FACT.encode(), "text/plain")}
    assert (
        client.post("/v1/documents", files=files, data={"collection": "facilities"}).status_code
        == 201
    )
    assert _search_ids(client, "Zanzibar office") == []
    r = client.post("/v1/search", json={"query": "Zanzibar office", "collection": "facilities"})
    assert [h["document_id"] for h in r.json()["results"]] == ["uploads/hours.txt"]
    models = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert {"default", "facilities"} <= models


def test_the_collections_that_keep_originals_are_neither_listed_nor_usable(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
) -> None:
    client, _ = served
    files = {"file": ("hours.txt", FACT.encode(), "text/plain")}
    assert client.post("/v1/documents", files=files).status_code == 201
    models = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert "default" in models and not [m for m in models if m.endswith("--files")], models
    for r in (
        client.post("/v1/documents", files=files, data={"collection": "default--files"}),
        client.get("/v1/documents", params={"collection": "default--files"}),
        client.get("/v1/document-file/uploads/hours.txt", params={"collection": "default--files"}),
    ):
        assert r.status_code == 400 and "reserved" in r.json()["detail"], r.text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("report.pdf", b"MZ\x90\x00 this is an executable", "not a PDF"),
        ("notes.txt", b"\x00\x01\x02binary\x00", "binary"),
        ("letter.docx", b"%PDF-1.4 a pdf in disguise", "not a DOCX"),
        ("empty.md", b"", "empty"),
        ("tool.exe", b"MZ", "unsupported file type"),
        ("broken.pdf", b"%PDF-1.4\n garbage without objects", "pdf"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason_and_leave_nothing(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
    name: str,
    content: bytes,
    reason: str,
) -> None:
    client, rag = served
    r = client.post("/v1/documents", files={"file": (name, content, "application/octet-stream")})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert reason.lower() in r.json()["detail"].lower()
    assert rag.catalog.get().store.count() == 0 and _kept_files(rag) == set()
    folder = settings.uploads_dir / "default"
    assert not folder.exists() or not [p for p in folder.iterdir() if p.name != ".staging"]


def test_an_oversized_upload_is_refused(served: tuple[TestClient, Rag]) -> None:  # type: ignore[type-arg]
    client, _ = served
    big = b"word " * 120_000  # 600 kB against a 0.5 MB limit
    r = client.post("/v1/documents", files={"file": ("big.txt", big, "text/plain")})
    assert r.status_code in (413, 422), r.text
    assert "large" in r.json()["detail"].lower()


def test_upload_names_cannot_escape_the_upload_folder(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    client, _ = served
    for hostile in [
        "../../etc/passwd.txt",
        "..\\..\\boot.ini.txt",
        "/abs/path/x.txt",
        "ｆｕｌｌ\u202ewidth.txt",
    ]:
        r = client.post("/v1/documents", files={"file": (hostile, FACT.encode(), "text/plain")})
        assert r.status_code == 201, (hostile, r.text)
        doc_id = r.json()["document"]["document_id"]
        assert doc_id.startswith("uploads/") and ".." not in doc_id and "\\" not in doc_id
        name = doc_id.removeprefix("uploads/")
        assert "/" not in name and "\u202e" not in name, name
        download = client.get(f"/v1/document-file/{doc_id}")
        assert download.status_code == 200 and download.content == FACT.encode()
        disposition = download.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="') and "/" not in disposition
        if not name.isascii():  # Latin-1 headers: the real name percent-encoded beside
            assert disposition.endswith("filename*=UTF-8''" + quote(name)), disposition
    assert not (settings.data_dir.parent / "etc").exists()
    assert not list((settings.uploads_dir / "default").rglob("*.txt"))  # staged, then removed


def test_an_uploaded_pdf_keeps_its_pages(served: tuple[TestClient, Rag], tmp_path: Path) -> None:  # type: ignore[type-arg]
    client, _ = served
    pdf = make_pdf(tmp_path / "p.pdf", ["Cover page.", FACT])
    r = client.post(
        "/v1/documents", files={"file": ("rules.pdf", pdf.read_bytes(), "application/pdf")}
    )
    assert r.status_code == 201 and r.json()["document"]["pages"] == 2
    hits = client.post("/v1/search", json={"query": "Zanzibar office Friday", "top_k": 1}).json()[
        "results"
    ]
    assert hits[0]["page"] == 2


def test_rag_ingest_sync_leaves_uploaded_documents_alone(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
    embedder: Embedder,
) -> None:
    from ingest.build import build_pipeline

    client, _ = served
    client.post("/v1/documents", files={"file": ("hours.txt", FACT.encode(), "text/plain")})
    report = build_pipeline(settings, embedder).run([EXAMPLES], sync=True)
    assert report.deleted == 0
    assert "uploads/hours.txt" in {
        d["document_id"] for d in client.get("/v1/documents").json()["documents"]
    }


def test_concurrent_uploads_of_one_name_all_succeed_and_one_version_wins(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    """Same-name uploads replace each other (new chunks, then the old ones deleted); each one
    answers with the document it wrote itself, never a 404 from catching another's replace."""
    client, rag = served
    writers, rounds = 4, 4
    versions = {
        f"# Version {i}\n\n{FACT} Lantern number {i} is lit first.\n".encode(): f"Version {i}"
        for i in range(writers)
    }
    barrier = threading.Barrier(writers)

    def upload(content: bytes) -> tuple[int, str, str]:
        barrier.wait()
        r = client.post("/v1/documents", files={"file": ("race.md", content, "text/markdown")})
        return r.status_code, r.text, versions[content]

    with ThreadPoolExecutor(writers) as pool:
        for _ in range(rounds):
            for status, text, title in pool.map(upload, versions):
                assert status == 201, text
                body = json.loads(text)
                assert body["status"] in ("added", "updated", "unchanged"), text
                assert body["document"]["title"] == title, text  # its own write, not another's

    listed = client.get("/v1/documents", params={"contains": "race.md"}).json()["documents"]
    assert [d["document_id"] for d in listed] == ["uploads/race.md"]
    chunks = [c for c in rag.catalog.get().store.all_chunks() if c.document_id == "uploads/race.md"]
    (content_hash,) = {c.content_hash for c in chunks}
    kept = rag.catalog.get().files.read("uploads/race.md", content_hash)
    assert kept is not None and kept.data in versions  # the version the store holds, whole
    assert listed[0]["title"] == versions[kept.data] and len(chunks) == listed[0]["chunks"]
    assert _kept_files(rag) == {("uploads/race.md", content_hash)}  # the replaced ones dropped


def test_an_original_an_earlier_release_kept_on_disk_is_still_served_while_current(
    served: tuple[TestClient, Rag],  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    """Releases before 2026-12-06 kept an upload's original in this process's folder. Such a
    file is still served, but only while it is the version the chunks show; uploading the
    document again moves it into the store."""
    client, rag = served
    content = f"# Office hours\n\n{FACT}\n".encode()
    files = {"file": ("hours.md", content, "text/markdown")}
    assert client.post("/v1/documents", files=files).status_code == 201
    rag.catalog.get().files.forget("uploads/hours.md")  # as an earlier release left it:
    legacy = settings.uploads_dir / "default" / "hours.md"
    legacy.write_bytes(content)  # the file on disk, none in the store
    assert client.get("/v1/document-text/uploads/hours.md").json()["has_file"] is True
    assert client.get("/v1/document-file/uploads/hours.md").content == content

    legacy.write_bytes(content + b"edited on disk afterwards\n")  # not what the chunks show
    assert client.get("/v1/document-text/uploads/hours.md").json()["has_file"] is False
    assert client.get("/v1/document-file/uploads/hours.md").status_code == 404

    legacy.write_bytes(content)
    assert client.post("/v1/documents", files=files).json()["status"] == "unchanged"
    assert not legacy.exists()  # moved into the store
    assert client.get("/v1/document-file/uploads/hours.md").content == content
