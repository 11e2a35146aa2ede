"""Helpers every benchmark shares: the question set, hit@k, the corpus, results files, HTTP, servers.

Benchmarks run on a shared 2-core machine, so each result records the load average and the
scripts compare candidates with baselines measured in the same run, interleaved.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEBIAN_POLICY = Path("/usr/share/doc/debian-policy/policy.html")
QA = ROOT / "eval" / "debian-policy.jsonl"
BIN = Path(sys.executable).parent


T = TypeVar("T")


def default_corpus() -> Path:
    """The Debian Policy Manual HTML (`apt-get install debian-policy`), else the bundled examples."""
    return DEBIAN_POLICY if DEBIAN_POLICY.is_dir() else ROOT / "examples" / "docs"


def load_questions(
    path: Path = QA, split: str | None = None, answerable: bool | None = True
) -> list[dict[str, Any]]:
    """Question-set rows, optionally one split and only (un)answerable ones."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if split is not None:
        rows = [q for q in rows if q.get("split") == split]
    if answerable is not None:
        rows = [q for q in rows if bool(q["answerable"]) == answerable]
    return rows


def hits_at(
    retrieve: Callable[[str, int], list[str]], questions: Iterable[Mapping[str, Any]], k: int
) -> int:
    """How many questions have their gold `source` among the top-k retrieved sources."""
    return sum(q["source"] in retrieve(q["question"], k) for q in questions)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


# The instruction sets the models' speed turns on: llama.cpp's and ONNX Runtime's kernels, and
# whether int8 products run on VNNI (rag_core.embedding_onnx).
_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def environment() -> dict[str, Any]:
    """What the figures depend on: the CPU by name and by the instruction sets the models use (an
    "AMD EPYC" here has been AVX2-only on some days and AVX-512 with VNNI on others), how busy
    the shared machine was (load average), and how fast its cores ran (a matrix-product rate;
    it measured about 46 and 208 GFLOPS on two machines of that name, and latencies moved
    with it)."""
    from rag_core.settings import usable_cores

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": usable_cores(),
        "matmul_gflops_fp32": matmul_gflops(),
        "python": sys.version.split()[0],
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    from rag_core.embedding_onnx import cpu_flags

    have = cpu_flags() or frozenset()
    return [flag for flag in _ISA_FLAGS if flag in have]


@functools.cache
def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """float32 matrix products per second on all the cores numpy uses (best of `repeats`): a
    ruler for the machine, measured once per process, so latencies from different days can be
    read against how fast the machine was."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a  # warm up the BLAS threads
    best = min(timed(lambda: a @ a)[1] for _ in range(repeats))
    return round(2 * size**3 / best / 1e9, 1)


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """What `work()` returns, and the seconds it took."""
    began = time.perf_counter()
    value = work()
    return value, time.perf_counter() - began


def write_results(name: str, data: Mapping[str, Any], markdown: str, out: Path = RESULTS) -> None:
    """bench/results/NAME.json (machine-readable, with the environment) and NAME.md."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {**data, "environment": {**environment(), **data.get("environment", {})}}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)


def api_key_arg(parser: Any) -> None:
    parser.add_argument(
        "--api-key",
        default=os.environ.get("RAG_BENCH_API_KEY"),
        help="sent as 'Authorization: Bearer KEY' (default: $RAG_BENCH_API_KEY)",
    )


def http_client(base_url: str, api_key: str | None = None, timeout: float = 120.0) -> Any:
    """The one HTTP client the benchmarks use: every request carries the API key when given."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def async_http_client(base_url: str, api_key: str | None = None, timeout: float = 300.0) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, limits=limits)


def _status_mb(pid: int, field: str) -> float:
    """One memory line of /proc/PID/status (given in kB), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """The process's resident set now (VmRSS), in MB."""
    return _status_mb(pid, "VmRSS")


class Server:
    """A real `rag-server` process on loopback, started with the given RAG_* environment."""

    def __init__(
        self, env: Mapping[str, str], port: int, api_key: str | None = None, role: str = "reader"
    ) -> None:
        self.env = {**os.environ, **env, "RAG_PORT": str(port), "RAG_HOST": "127.0.0.1"}
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.api_key = api_key
        self.role = role  # of the key made at start: "admin" may upload and delete
        self.startup_s = float("nan")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 900.0) -> Server:
        import httpx

        if self.api_key is None:  # a key of its own, made as an operator would (`keys add`)
            made = subprocess.run(
                [str(BIN / "rag-server"), "keys", "add", "--id", f"bench-{secrets.token_hex(4)}",
                 "--role", self.role, "--groups", "*"],
                env=self.env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            self.api_key = made.stdout.strip()
        with socket.socket() as probe:  # else the readiness poll could reach another server
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT ok
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise RuntimeError(f"port {self.port} is in use: stop what listens there") from None
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "rag-server")], env=self.env, stdout=subprocess.DEVNULL
        )
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"rag-server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    self.startup_s = time.perf_counter() - began
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"rag-server not ready after {timeout}s")

    def client(self) -> Any:
        return http_client(self.url, self.api_key)

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        return peak_rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_server(
    env: Mapping[str, str], port: int, api_key: str | None = None, role: str = "reader"
) -> Iterator[Server]:
    server = Server(env, port, api_key, role).start()
    try:
        yield server
    finally:
        server.stop()


class NoModel:
    """Stands in for the generator where a benchmark measures everything but writing (quoting,
    replayed generations): asking it to generate is a bug in the benchmark."""

    name = "none"
    style = "base"
    context_tokens = 4096

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def check(self) -> None:
        """Always ready."""

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("this benchmark never asks the model to write")
