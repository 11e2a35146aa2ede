"""A start-up test generation of the in-process GGUF, run in a child process.

llama.cpp is native code. A build compiled for another CPU (llama.cpp built with -march=native on
an Intel Xeon with AMX dies with a general-protection fault at `ldtilecfg`), or a malformed model,
faults at the first generation and takes the whole server down with every request in flight. The
default answer mode never generates, so such a server would look healthy until the first chat
model or `answer_mode=generate` request. Generating a few tokens once, in a child process, turns
that into a clear start-up error naming the cause, and the server process itself is never at risk.

Run as `python -m rag_server.native_probe MODEL.gguf N_THREADS`: prints one JSON line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_core.errors import ModelLoadError

PROMPT = "The capital of France is"
_NATIVE_FAULTS = {"SIGILL", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGABRT"}
_ADVICE = (
    "This is most often a llama.cpp build compiled for another CPU (for example -march=native on a "
    "machine with AMX or AVX-512, or a wheel copied from one): reinstall llama-cpp-python "
    "portably with `make install` (scripts/install-llama.sh, flags in docker/llama-cmake-args), "
    "or check the GGUF file (RAG_GENERATOR__MODEL_PATH)."
)


@dataclass(frozen=True)
class ProbeReport:
    """What the child saw: llama.cpp's compiled CPU features, and how long the test took."""

    system_info: str
    text: str
    seconds: float


def _tail(text: str, lines: int = 8) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(nothing)"


def probe_generation(
    model_path: Path,
    n_threads: int,
    timeout_s: float = 120.0,
    command: Sequence[str] | None = None,
) -> ProbeReport:
    """Generate a few tokens with `model_path` in a child process; raise ModelLoadError naming
    the cause if the child crashes, fails or hangs. `command` replaces the child (tests)."""
    argv = (
        list(command)
        if command is not None
        else [
            sys.executable,
            "-X",
            "faulthandler",  # a native fault prints the Python stack that reached it
            "-m",
            __name__,
            str(model_path),
            str(n_threads),
        ]
    )
    began = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelLoadError(
            f"the start-up test generation with {model_path} did not finish in {timeout_s:.0f} s"
        ) from exc
    seconds = time.perf_counter() - began
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        cause = _ADVICE if name in _NATIVE_FAULTS else "It was killed from outside."
        raise ModelLoadError(
            f"llama.cpp crashed ({name}) in the start-up test generation with {model_path.name}, "
            f"so the server did not start rather than crash at its first request. {cause} "
            f"Child output: {_tail(done.stderr)}"
        )
    report = _report(done.stdout)
    if "error" in report:  # llama.cpp refused the file: no crash, a plain load error
        raise ModelLoadError(str(report["error"]))
    if done.returncode != 0:
        raise ModelLoadError(
            f"the start-up test generation with {model_path} failed (exit {done.returncode}): "
            f"{_tail(done.stderr)}"
        )
    if "system_info" not in report:
        raise ModelLoadError(
            f"the start-up test generation with {model_path} printed no report: "
            f"{_tail(done.stdout)} {_tail(done.stderr)}"
        )
    return ProbeReport(str(report["system_info"]), str(report.get("text", "")), seconds)


def _report(stdout: str) -> dict[str, object]:
    """The child's last line, a JSON object; {} when it printed none (it died first)."""
    lines = stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def _child(model_path: str, n_threads: int) -> None:
    """Load the model and generate four tokens, the way the server's generator does."""
    from llama_cpp import Llama, llama_print_system_info

    try:
        llm = Llama(
            model_path=model_path,
            n_ctx=512,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=0,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        print(json.dumps({"error": f"cannot load GGUF model {model_path}: {exc}"}), flush=True)
        sys.exit(2)
    out = llm.create_completion(PROMPT, max_tokens=4, temperature=0.0)
    text = out["choices"][0]["text"]  # type: ignore[index]
    info = llama_print_system_info().decode(errors="replace").strip()
    print(json.dumps({"system_info": info, "text": text}), flush=True)


if __name__ == "__main__":  # pragma: no cover - runs in the child
    _child(sys.argv[1], int(sys.argv[2]))
