"""The installed console scripts as real processes: the README's run path, and kill -9 safety."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, make_docx, make_pdf

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(data_dir), **extra})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ingest_then_serve_answers_over_http(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = subprocess.run(
        [BIN / "rag-ingest", EXAMPLES, "--json"], env=_env(data), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 5
    port = _free_port()
    server = subprocess.Popen(
        [BIN / "rag-server"], env=_env(data, RAG_PORT=str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("server never became ready")
        answer = httpx.post(
            f"{base}/v1/ask",
            json={"question": "How many days of paid annual leave do employees get?"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] in {"answered", "extractive"}, body
        assert "27 days" in body["answer"]
        assert body["citations"][0]["document_id"] == "leave-policy.docx"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            log, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    # uvicorn finishes in-flight work, then re-raises SIGTERM to report how it ended.
    assert server.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log


def test_a_bad_setting_stops_the_server_naming_the_variable(tmp_path: Path) -> None:
    run = subprocess.run(
        [BIN / "rag-server"], env=_env(tmp_path, RAG_PORT="not-a-port"), capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 2 and "RAG_PORT" in run.stderr


def _corpus(root: Path, files: int) -> None:
    rng = random.Random(7)
    words = [
        "policy",
        "leave",
        "travel",
        "expense",
        "laptop",
        "badge",
        "office",
        "claim",
        "receipt",
        "manager",
    ]
    for i in range(files):
        body = [" ".join(rng.choices(words, k=60)) + f" Fact number {i}-{j}." for j in range(12)]
        kind = i % 4
        if kind == 0:
            make_pdf(root / f"doc{i}.pdf", ["\n".join(body[:6]), "\n".join(body[6:])])
        elif kind == 1:
            make_docx(root / f"doc{i}.docx", f"Document {i}", body)
        elif kind == 2:
            (root / f"doc{i}.html").write_text(
                f"<html><body><main><h1>Doc {i}</h1>"
                + "".join(f"<p>{p}</p>" for p in body)
                + "</main></body></html>"
            )
        else:
            (root / f"doc{i}.md").write_text(f"# Doc {i}\n\n" + "\n\n".join(body))


def _chunk_ids(data: Path) -> list[str]:
    """Read the store in a fresh process (with a timeout), as a new server would."""
    code = """
import json
from rag_server.settings import load_settings
from rag_server.store import open_client
client = open_client(load_settings())
names = [c.name for c in client.list_collections()]
c = client.get_collection("default", embedding_function=None) if "default" in names else None
print(json.dumps(sorted(c.get(include=[])["ids"]) if c else []))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(data), capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    return list(json.loads(out.stdout))


def test_kill_9_during_ingest_then_rerun_equals_a_clean_ingest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _corpus(docs, 40)
    clean = tmp_path / "clean"
    subprocess.run(
        [BIN / "rag-ingest", docs, "--json"],
        env=_env(clean),
        check=True,
        capture_output=True,
        timeout=600,
    )
    expected = _chunk_ids(clean)
    assert len(expected) > 40
    # The first run also exports the embedder to ONNX (once per data dir): time a run that
    # finds the export made, as every crashed run below will.
    timed, crashed = tmp_path / "timed", tmp_path / "crashed"
    for target in (timed, crashed):
        shutil.copytree(clean / "models", target / "models")
    began = time.monotonic()
    subprocess.run(
        [BIN / "rag-ingest", docs, "--json"],
        env=_env(timed),
        check=True,
        capture_output=True,
        timeout=600,
    )
    clean_seconds = time.monotonic() - began

    rng = random.Random(11)
    partial_counts = []
    for _ in range(4):
        proc = subprocess.Popen(
            [BIN / "rag-ingest", docs, "--json"], env=_env(crashed, RAG_INGEST__BATCH_CHUNKS="16"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Start-up (imports, embedder) is most of a run: aim the kill at the writing phase.
        time.sleep(rng.uniform(0.55, 0.95) * clean_seconds)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if (crashed / "chroma").exists():
            partial_counts.append(len(_chunk_ids(crashed)))
    # The test only means something if some kill landed while chunks were being written.
    assert any(0 < n < len(expected) for n in partial_counts), partial_counts
    rerun = subprocess.run(
        [BIN / "rag-ingest", docs, "--json"], env=_env(crashed), capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert _chunk_ids(crashed) == expected
    again = json.loads(
        subprocess.run(
            [BIN / "rag-ingest", docs, "--json"], env=_env(crashed), capture_output=True, text=True,
            timeout=600, check=True,
        ).stdout
    )  # fmt: skip
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 40)
