"""Store modes and generator backends: the embedded single-writer lock, an embedded server seeing
another process's writes, and 503s (not 500s) when a remote dependency is unreachable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.errors import StoreLockedError, StoreUnavailableError
from rag_core.settings import Settings, load_settings
from rag_core.store import open_client
from rag_core.writelock import LOCK_NAME, exclusive_writer, store_writer
from rag_server.app import create_app
from rag_server.openai_backend import OpenAIGenerator
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, ClientFor, ScriptedGenerator, add_key, bearer
from tests.processes import BIN, ChromaServer, free_port, rag_env


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    with exclusive_writer(tmp_path, "first-writer"):
        with pytest.raises(StoreLockedError) as info, exclusive_writer(tmp_path, "second"):
            pass  # pragma: no cover - never entered
        message = info.value.detail
        assert "first-writer" in message and f"pid {os.getpid()}" in message
        assert info.value.status == 409
    with exclusive_writer(tmp_path, "after-release"):  # released on exit
        assert "after-release" in (tmp_path / LOCK_NAME).read_text()


def test_a_chroma_server_needs_no_writer_lock(settings: Settings) -> None:
    http = settings.model_copy(update={"store": settings.store.model_copy(update={"mode": "http"})})
    with store_writer(http, "a"), store_writer(http, "b"):
        pass
    assert not settings.chroma_dir.exists()


def test_rag_ingest_refuses_a_locked_store_before_loading_anything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with exclusive_writer(data / "chroma", "nightly-import"):
        run = subprocess.run(
            [BIN / "rag-ingest", EXAMPLES], env=rag_env(data), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "nightly-import" in run.stderr and "only one writer" in run.stderr
    # Nothing was opened, let alone written.
    assert [p.name for p in (data / "chroma").iterdir()] == [LOCK_NAME]


def test_a_killed_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from rag_core.writelock import exclusive_writer\n"
         "with exclusive_writer(Path(sys.argv[1]), 'doomed'):\n"
         "    print('held', flush=True); time.sleep(600)\n", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError, match="doomed"), exclusive_writer(tmp_path, "x"):
            pass  # pragma: no cover
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with exclusive_writer(tmp_path, "next"):
        pass


def test_the_server_reads_while_a_writer_holds_the_lock(
    examples: Settings, client_for: ClientFor
) -> None:
    client = client_for(examples, ScriptedGenerator(["unused"]))
    with store_writer(examples, "rag-ingest"):
        response = client.post("/v1/search", json={"query": "parental leave weeks"})
        assert response.status_code == 200
        assert response.json()["results"][0]["document_id"] == "leave-policy.docx"
        assert client.get("/readyz").status_code == 200


def test_an_unreachable_chroma_server_fails_start_up_naming_the_settings(
    settings: Settings,
) -> None:
    store = settings.store.model_copy(
        update={"mode": "http", "port": free_port(), "connect_wait_s": 0.5}
    )
    with pytest.raises(StoreUnavailableError, match="RAG_STORE__HOST"):
        open_client(settings.model_copy(update={"store": store}))


def test_an_unreachable_generator_endpoint_is_503_and_search_still_works(
    examples: Settings, client_for: ClientFor
) -> None:
    generator_settings = load_settings(
        generator={
            "backend": "openai",
            "base_url": f"http://127.0.0.1:{free_port()}/v1",
            "model": "remote-model",
            "timeout_s": 5,
        }
    ).generator
    client = client_for(examples, OpenAIGenerator.connect(generator_settings))
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "generator endpoint" in ready.json()["detail"]
    ask = client.post("/v1/ask", json={"question": "How many weeks of parental leave?"})
    assert ask.status_code == 503, ask.text
    assert ask.headers["content-type"].startswith("application/problem+json")
    assert ask.json()["title"] == "Generator unavailable" and ask.headers["retry-after"]
    assert client.post("/v1/search", json={"query": "parental leave"}).status_code == 200


@pytest.mark.slow
def test_an_embedded_server_sees_another_processes_ingest_and_delete(
    examples: Settings, client_for: ClientFor, tmp_path: Path
) -> None:
    """rag-ingest in its own process (as the Kubernetes Job) writes the store the server reads.
    An embedded Chroma client caches its vector index, so without reopening on a new revision
    the server would keep returning deleted chunks and miss new ones."""
    client = client_for(examples, ScriptedGenerator(["unused"]))
    docs = tmp_path / "more"
    docs.mkdir()
    (docs / "aurora.md").write_text(
        "# Aurora programme\n\nThe Aurora mentoring programme pairs each new hire with a "
        "mentor from another department for exactly 14 months.\n"
    )
    query = {"query": "How long does the Aurora mentoring programme last?", "top_k": 3}

    def top() -> str:
        response = client.post("/v1/search", json=query)
        assert response.status_code == 200, response.text
        return str(response.json()["results"][0]["document_id"])

    assert top() != "aurora.md"
    env = rag_env(examples.data_dir)
    add = subprocess.run(
        [BIN / "rag-ingest", docs, "--json"], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert add.returncode == 0 and json.loads(add.stdout)["added"] == 1, add.stderr
    deadline = time.monotonic() + 60  # at the top once the keyword index is rebuilt (background)
    while top() != "aurora.md":
        assert time.monotonic() < deadline, "the keyword index never caught up"
        time.sleep(0.2)
    (docs / "aurora.md").unlink()
    (docs / "other.md").write_text("# Other\n\nCanteen opening hours are posted weekly.\n")
    sync = subprocess.run(
        [BIN / "rag-ingest", docs, "--sync", "--json"], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert sync.returncode == 0 and json.loads(sync.stdout)["deleted"] >= 1, sync.stderr
    results = client.post("/v1/search", json=query).json()["results"]
    assert "aurora.md" not in {r["document_id"] for r in results}


def test_a_hung_chroma_server_is_a_503_after_the_timeout_not_a_hung_request(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    chroma = ChromaServer(tmp_path / "chroma").start()
    store = settings.store.model_copy(
        update={"mode": "http", "host": "127.0.0.1", "port": chroma.port, "timeout_s": 1.0}
    )
    http = settings.model_copy(update={"store": store})
    try:
        build_pipeline(http, embedder).run([EXAMPLES])
        rag = assemble(http, embedder, ScriptedGenerator(["unused"]))
        assert chroma.proc is not None
        chroma.proc.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
        with TestClient(app=create_app(http, rag), raise_server_exceptions=False) as client:
            client.headers.update(bearer(add_key(http)))
            search = client.post("/v1/search", json={"query": "parental leave"}, timeout=30)
            assert search.status_code == 503 and search.headers["retry-after"]
            assert client.get("/readyz", timeout=30).status_code == 503
            chroma.proc.send_signal(signal.SIGCONT)
            assert client.get("/readyz", timeout=30).status_code == 200
    finally:
        if chroma.proc is not None:
            chroma.proc.send_signal(signal.SIGCONT)
        chroma.kill()
