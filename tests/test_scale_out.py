"""Scale-out for real: a Chroma server (`chroma run`) on loopback, ingestion through rag-ingest in
http mode, and two rag-server processes sharing the store, as the scale-out overlay runs them."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag_server.generation import default_model_path
from tests.conftest import EXAMPLES
from tests.processes import BIN, ChromaServer, RagServer, rag_env

pytestmark = pytest.mark.slow

AURORA = (
    "# Aurora programme\n\nThe Aurora mentoring programme pairs each new hire with a mentor "
    "from another department for exactly 14 months.\n"
)
AURORA_QUERY = {"query": "How long does the Aurora mentoring programme last?", "top_k": 3}


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Assembled once: the servers share it instead of each assembling its own copy."""
    return default_model_path(tmp_path_factory.mktemp("models"))


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma").start()
    yield server
    server.kill()


def _ingest(docs: Path, env: dict[str, str]) -> dict[str, object]:
    run = subprocess.run(
        [BIN / "rag-ingest", docs, "--sync", "--json"], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def _documents(server: RagServer, query: dict[str, object]) -> list[str]:
    response = server.call("POST", "/v1/search", json=query)
    assert response.status_code == 200, response.text
    return [r["document_id"] for r in response.json()["results"]]


def _poll(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.5)


def _pdf_with_photo(path: Path, text: str) -> Path:
    """A one-page PDF of `text` and a 1,800-pixel square of noise, which no compression
    shrinks: about 9.5 MB."""
    import numpy as np
    from fpdf import FPDF
    from PIL import Image

    noise = np.random.default_rng(7).integers(0, 256, (1800, 1800, 3), dtype=np.uint8)
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    pdf.image(Image.fromarray(noise), w=100)
    pdf.output(str(path))
    assert path.stat().st_size > 9 * 1024 * 1024
    return path


def test_two_servers_share_one_chroma_server_and_survive_its_restart(
    tmp_path: Path, chroma: ChromaServer, gguf: Path
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    ingest_env = rag_env(tmp_path / "ingest-data", **chroma.settings_env())
    assert _ingest(docs, ingest_env)["added"] == 5
    assert not (tmp_path / "ingest-data" / "chroma").exists()  # nothing embedded on the side

    servers = [
        RagServer(
            rag_env(
                tmp_path / f"data{i}",
                RAG_GENERATOR__MODEL_PATH=str(gguf),
                RAG_GENERATOR__N_THREADS="1",
                **chroma.settings_env(),
            )
        ).start()
        for i in range(2)
    ]
    try:
        for server in servers:
            ready = server.wait_ready().call("GET", "/readyz").json()
            assert ready["checks"]["store"] == "ok (http)"
            assert "aurora.md" not in _documents(server, AURORA_QUERY)

        # A document ingested while both servers run is found by both (at the top once each has
        # rebuilt its keyword index in the background; until then, by the dense side).
        (docs / "aurora.md").write_text(AURORA)
        assert _ingest(docs, ingest_env)["added"] == 1
        for server in servers:
            _poll(lambda s=server: _documents(s, AURORA_QUERY)[0] == "aurora.md")

        # Deleted from the documents volume, then --sync: gone from both.
        (docs / "aurora.md").unlink()
        assert _ingest(docs, ingest_env)["deleted"] == 1
        for server in servers:
            assert "aurora.md" not in _documents(server, AURORA_QUERY)

        # An upload taken by one server: the other serves its original file too (a photo makes
        # it 9.5 MB, so it is kept in parts written in more than one request), and a delete on
        # the other removes it for both.
        photo = _pdf_with_photo(tmp_path / "badge.pdf", "Badges are collected at the west desk.")
        data = photo.read_bytes()
        upload = servers[0].call(
            "POST", "/v1/documents", files={"file": ("badge.pdf", data, "application/pdf")}
        )
        assert upload.status_code == 201, upload.text
        doc_id = upload.json()["document"]["document_id"]
        _poll(lambda: servers[1].call("GET", f"/v1/document-text/{doc_id}").status_code == 200)
        assert servers[1].call("GET", f"/v1/document-text/{doc_id}").json()["has_file"] is True
        download = servers[1].call("GET", f"/v1/document-file/{doc_id}")
        assert download.status_code == 200 and download.content == data
        assert servers[1].call("DELETE", f"/v1/documents/{doc_id}").status_code == 204
        _poll(lambda: servers[0].call("GET", f"/v1/document-file/{doc_id}").status_code == 404)

        # Chroma goes away: both turn not-ready and answer 503 problem details, but stay alive.
        chroma.kill()
        for server in servers:
            ready = server.call("GET", "/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"].startswith("application/problem+json")
            search = server.call("POST", "/v1/search", json=AURORA_QUERY)
            assert search.status_code == 503, search.text
            assert search.headers["retry-after"]
            assert search.json()["title"] == "Vector store unavailable"
            ask = server.call("POST", "/v1/ask", json={"question": "How long is parental leave?"})
            assert ask.status_code == 503, ask.text
            assert server.call("GET", "/healthz").status_code == 200

        # Chroma comes back on the same volume: both recover without a restart of their own.
        chroma.start()
        for server in servers:
            _poll(lambda s=server: s.call("GET", "/readyz").status_code == 200)
            top = _documents(server, {"query": "how many weeks of parental leave", "top_k": 3})
            assert top[0] == "leave-policy.docx"
            assert server.proc is not None and server.proc.poll() is None
    finally:
        logs = [server.stop() for server in servers]
    assert all("Application shutdown complete" in log for log in logs), logs


def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(
    tmp_path: Path, chroma: ChromaServer, gguf: Path
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    env = rag_env(tmp_path / "data", RAG_GENERATOR__MODEL_PATH=str(gguf), **chroma.settings_env())
    _ingest(docs, env)
    # The model writes, so the request in flight at SIGTERM is a generation of several seconds.
    serve = {**env, "RAG_SHUTDOWN_GRACE_S": "60", "RAG_GROUNDING__ANSWER_MODE": "generate"}
    server = RagServer(serve).start().wait_ready()
    question = {"question": "How many days of paid annual leave do employees get?", "stream": True}
    with (
        httpx.Client(timeout=120, headers={"Authorization": f"Bearer {server.token}"}) as client,
        client.stream("POST", f"{server.base}/v1/ask", json=question) as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == "event: sources"  # the request is in flight: retrieval is done
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)

        def refused() -> bool:
            """No answer to a new request: the connection refused, or, when it raced the
            listening socket's close (taken into the kernel's backlog, then dropped), reset or
            closed before any response."""
            try:
                httpx.get(f"{server.base}/healthz", timeout=2)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                return True
            return False

        _poll(refused, timeout=10)  # no new connections once SIGTERM arrived
        rest = "\n".join(lines)
    assert "event: final" in rest
    final = json.loads(rest.split("event: final", 1)[1].split("data:", 1)[1].split("\n")[0])
    assert "27 days" in final["answer"]
    log = server.stop()
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log
