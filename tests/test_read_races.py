"""Searches racing writes on the embedded store, over the real embedder, Chroma and app: a read
that meets a re-ingest or a delete half-applied is read again, never answered with a 500. And the
rule itself, on a reader with scripted failures: read again after catching up, a 503 after the
last try, any other failure at once."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from chromadb.errors import InternalError
from litestar.testing import TestClient

from ingest.build import build_pipeline
from ingest.pipeline import SIDECAR
from rag_core.chroma_client import READ_TRIES, TornReadError, reread_on_race
from rag_core.embedding import Embedder
from rag_core.errors import StoreUnavailableError
from rag_core.settings import Settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import ScriptedGenerator, add_key, bearer

WORDS = "falcon granite harbour juniper lantern meadow"
QUERIES = [WORDS, "Which ledger entry does the harbour log hold?", "granite lantern revision"]
ROUNDS = 8


def _write_corpus(docs: Path, revision: int) -> None:
    """Three documents of several chunks each, every chunk's text new at each revision (so a
    re-ingest adds new ids and deletes the old ones), alternately stamped for `it` and public."""
    for d in range(3):
        paragraphs = "\n\n".join(
            f"The {WORDS} log {d}.{p}, revision {revision}, holds ledger entry "
            f"{revision * 1000 + d * 100 + p}. " * 4
            for p in range(12)
        )
        folder = docs / f"part{d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "log.md").write_text(f"# Log {d}, revision {revision}\n\n{paragraphs}\n")
        (folder / SIDECAR).write_text("it\n" if (revision + d) % 2 else "\n")


def test_searches_racing_reingests_and_deletes_are_answered_not_500(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """A writer with its own client (as `rag-ingest` in another process) re-ingests and deletes
    documents, round after round, while readers search through the API, one with a group key
    (the dense query carries an access `where`) and one reading everything. The server's embedded
    client lags those writes between two revisions, and Chroma then fails a query ("Error finding
    id") or returns a record deleted under it: every search must still be answered (200)."""
    docs = tmp_path / "docs"
    _write_corpus(docs, 0)
    unlimited = settings.limits.model_copy(update={"requests_per_minute": 1_000_000})
    settings = settings.model_copy(update={"limits": unlimited})
    batches = settings.ingest.model_copy(update={"batch_chunks": 8})  # many writes per run
    writer = build_pipeline(settings.model_copy(update={"ingest": batches}), embedder)
    assert not writer.run([docs]).failed
    rag = assemble(settings, embedder, ScriptedGenerator(["-"]))
    keys = [add_key(settings, groups=["it"]), add_key(settings, groups=["*"])]
    done = threading.Event()
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    def search(client: TestClient, token: str) -> None:  # type: ignore[type-arg]
        while not done.is_set():
            for query in QUERIES:
                response = client.post(
                    "/v1/search", json={"query": query, "top_k": 10}, headers=bearer(token)
                )
                statuses[response.status_code] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:300]}")

    with TestClient(app=create_app(settings, rag), raise_server_exceptions=False) as client:
        readers = [threading.Thread(target=search, args=(client, k), daemon=True) for k in keys]
        for reader in readers:
            reader.start()
        try:
            for n in range(1, ROUNDS + 1):
                _write_corpus(docs, n)
                assert not writer.run([docs]).failed
                assert writer.store.delete_document("part1/log.md") > 0  # as an API delete
        finally:
            done.set()
            for reader in readers:
                reader.join(timeout=120)
    assert statuses[200] > 0
    assert not failures, (dict(statuses), failures[:3])


class ScriptedReads:
    """A reader whose reads go as scripted (an exception to raise, or the value to return), and
    that counts how often it was read and made to catch up with the store."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.collection: Any = object()  # stands for a chromadb Collection
        self.reads = 0
        self.caught_up: list[object] = []

    def catch_up(self, stale: object) -> None:
        assert stale is self.collection  # it catches up from the collection the read used
        self.caught_up.append(stale)
        self.collection = object()

    @reread_on_race
    def read(self) -> object:
        self.reads += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def test_a_read_that_raced_a_write_is_read_again_from_the_store_as_it_is_now() -> None:
    store = ScriptedReads(InternalError("Error finding id"), TornReadError("no metadata"), "rows")
    assert store.read() == "rows"
    assert store.reads == 3 and len(store.caught_up) == 2


def test_a_read_that_keeps_racing_is_a_503_after_the_last_try_not_a_500() -> None:
    store = ScriptedReads(*[InternalError("Error finding id")] * READ_TRIES)
    with pytest.raises(StoreUnavailableError, match=f"failed {READ_TRIES} times") as raised:
        store.read()
    assert raised.value.status == 503 and raised.value.retry_after
    assert store.reads == READ_TRIES and len(store.caught_up) == READ_TRIES - 1


def test_any_other_read_failure_is_reported_at_once_and_never_repeated() -> None:
    store = ScriptedReads(ValueError("where clause is malformed"), "never reached")
    with pytest.raises(ValueError, match="malformed"):
        store.read()
    assert store.reads == 1 and store.caught_up == []
