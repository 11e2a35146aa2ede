"""The installed console scripts as real processes: the README's run path, and kill -9 safety."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import load_settings
from tests.conftest import EXAMPLES, clean_ids, make_docx, make_pdf
from tests.processes import BIN, RagServer
from tests.processes import rag_env as _env

pytestmark = pytest.mark.slow


def test_ingest_then_serve_answers_over_http(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = subprocess.run(
        [BIN / "rag-ingest", EXAMPLES, "--json"], env=_env(data), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 5
    server = RagServer(_env(data, RAG_LOG_FORMAT="json")).start()
    token = server.token
    assert token is not None and token.startswith("rag_")
    try:
        server.wait_ready(timeout=240)
        question = {"question": "How many days of paid annual leave do employees get?"}
        assert server.call("POST", "/v1/ask", json=question, token="").status_code == 401
        answer = server.call("POST", "/v1/ask", json=question)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] in {"answered", "extractive"}, body
        assert "27 days" in body["answer"]
        assert body["citations"][0]["document_id"] == "leave-policy.docx"
    finally:
        log = server.stop(timeout=30)
    # uvicorn finishes in-flight work, then re-raises SIGTERM to report how it ended.
    assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM)
    # Structured logs: every log record is one JSON object (the audit line too); no key in any.
    # (Lines not starting with "{" are native libraries writing to stderr, e.g. llama.cpp.)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert not [line for line in log.splitlines() if " - uvicorn" in line or "INFO" in line[:8]]
    assert any(e.get("message") == "Application shutdown complete." for e in lines), log
    assert any(
        e.get("action") == "ask" and str(e.get("key_id")).startswith("tester") for e in lines
    )
    assert any("/v1/ask" in e.get("message", "") for e in lines)  # uvicorn's access line
    assert token not in log and token.split("_", 2)[2] not in log


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
from rag_core.settings import load_settings
from rag_core.store import open_client
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


def _store_bytes(data: Path) -> int:
    """Bytes under the store: grows as soon as an ingest starts writing (no Chroma import)."""
    chroma = data / "chroma"
    return sum(f.stat().st_size for f in chroma.rglob("*") if f.is_file()) if chroma.exists() else 0


KILLS = 6  # each costs a process start-up; 6 keep the test near its former length


def test_kill_9_during_ingest_then_rerun_equals_a_clean_ingest(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Kill -9 at random moments, many times, while the corpus also changes between runs (so
    kills land in adds, replaces and --sync deletes); then a clean re-run must leave exactly
    the chunks of a clean ingest, read back by a fresh process."""
    docs = tmp_path / "docs"
    docs.mkdir()
    _corpus(docs, 32)
    crashed = tmp_path / "crashed"
    # The first run in a data dir exports the embedder to ONNX: do that now, with nothing to
    # ingest, so every killed run below spends its time on the same work.
    (tmp_path / "empty").mkdir()
    subprocess.run(
        [BIN / "rag-ingest", tmp_path / "empty", "--json"], env=_env(crashed), check=True,
        capture_output=True, timeout=600,
    )  # fmt: skip
    rng = random.Random(11)
    env = _env(crashed, RAG_INGEST__BATCH_CHUNKS="16")
    to_write: float | None = None  # seconds from spawn until the store first grows
    moments: list[str] = []
    for round_no in range(KILLS):
        if round_no:  # change the corpus a little: a replace, a delete or an add
            victim = docs / sorted(p.name for p in docs.iterdir())[rng.randrange(32)]
            action = rng.choice(["replace", "delete", "add"])
            if action == "replace" and victim.suffix == ".md":
                victim.write_text(victim.read_text() + f"\n\nRevision {round_no}.")
            elif action == "delete":
                victim.unlink(missing_ok=True)
            else:
                (docs / f"extra{round_no}.md").write_text(f"# Extra {round_no}\n\nLate addition.")
        began, before = time.monotonic(), _store_bytes(crashed)
        proc = subprocess.Popen(
            [BIN / "rag-ingest", docs, "--sync", "--json"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if to_write is None or round_no % 2:
            # While writing: once the store grows, after a random part of a few batches.
            while proc.poll() is None and _store_bytes(crashed) == before:
                if time.monotonic() - began > 300:
                    pytest.fail("ingest never started writing")
                time.sleep(0.05)
            to_write = to_write or time.monotonic() - began
            time.sleep(rng.uniform(0.0, 2.0))
        else:  # anywhere: imports, loading the embedder, opening the store, or writing
            time.sleep(rng.uniform(0.0, to_write + 2.0))
        at = time.monotonic() - began
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            moments.append(f"{at:.1f}s{'+' if _store_bytes(crashed) != before else ''}")
        proc.wait(timeout=30)
    print("kill moments (+: the store had grown):", moments)
    # Most kills must have hit a live process, some of them after it had begun to write.
    assert len(moments) >= KILLS - 2 and sum(m.endswith("+") for m in moments) >= 2, moments

    rerun = subprocess.run(
        [BIN / "rag-ingest", docs, "--sync", "--json"], env=_env(crashed), capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    expected = build_pipeline(load_settings(data_dir=tmp_path / "expected"), embedder)
    assert _chunk_ids(crashed) == sorted(clean_ids(expected, docs))
    again = json.loads(
        subprocess.run(
            [BIN / "rag-ingest", docs, "--sync", "--json"], env=_env(crashed), capture_output=True,
            text=True, timeout=600, check=True,
        ).stdout
    )  # fmt: skip
    files = len(list(docs.iterdir()))
    assert (again["added"], again["updated"], again["deleted"], again["unchanged"]) == (
        0,
        0,
        0,
        files,
    )
