"""No egress: ingest, serve and answer as real processes; none may reach beyond loopback.

Two layers. (1) A `sitecustomize` on PYTHONPATH installs an audit hook in every Python process
(`rag-ingest`, `rag-server`, the client driver) that records each socket connect, send, bind and
name lookup; the test fails on any destination that is not loopback or a Unix socket. It sees what
Python code does, including libraries such as huggingface_hub or Chroma's telemetry client.
(2) Where `unshare -n` works (root), everything also runs in a fresh network namespace that has
only a loopback interface, so even native code (Chroma's Rust core, llama.cpp, onnxruntime)
cannot reach out, and the run must still succeed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.processes import BIN, add_key, free_port

pytestmark = pytest.mark.slow

SITECUSTOMIZE = """
import json, os, socket, sys

_LOG = os.environ["EGRESS_AUDIT_LOG"]
_EVENTS = {
    "socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
    "socket.getnameinfo",
}


def _write(record):
    with open(_LOG, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\\n")


def _hook(event, args):
    if event not in _EVENTS:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"):
        sock, address = args[0], args[-1]
        family = getattr(sock, "family", None)
        _write({"event": event, "family": int(family) if family is not None else None,
                "address": repr(address), "host": address[0] if isinstance(address, tuple) else None,
                "pid": os.getpid()})
    else:
        _write({"event": event, "host": str(args[0]) if args else None, "address": repr(args),
                "family": None, "pid": os.getpid()})


_write({"event": "hook-installed", "argv": sys.argv[:1], "pid": os.getpid(), "host": None,
        "family": None, "address": ""})
sys.addaudithook(_hook)
"""

DRIVER = """
import json, os, subprocess, sys, time
import httpx

port = sys.argv[1]
auth = {"Authorization": "Bearer " + os.environ["EGRESS_API_KEY"]}
server = subprocess.Popen([sys.argv[2]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
base = f"http://127.0.0.1:{port}"
try:
    deadline = time.monotonic() + 240
    while True:
        if server.poll() is not None:
            sys.exit("server died: " + server.stdout.read())
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            sys.exit("server never became ready")
        time.sleep(0.5)
    ask = httpx.post(base + "/v1/ask", timeout=180, headers=auth,
                     json={"question": "How many days of paid annual leave do employees get?"})
    search = httpx.post(base + "/v1/search", json={"query": "VPN"}, headers=auth, timeout=60)
    print(json.dumps({"ask": ask.json(), "ask_status": ask.status_code,
                      "search_status": search.status_code}))
finally:
    server.terminate()
    server.wait(timeout=60)
"""


def _netns_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _is_local(record: dict[str, object]) -> bool:
    """Loopback, a Unix socket, or a wildcard/loopback name lookup."""
    if record["family"] == 1:  # AF_UNIX
        return True
    host = record["host"]
    if host is None or host in ("", "localhost", "None"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def test_ingest_serve_and_ask_never_reach_beyond_loopback(tmp_path: Path) -> None:
    hook_dir = tmp_path / "audit"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    log = tmp_path / "egress.jsonl"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        # Nothing here may rely on the caller's offline switches or proxies: the code sets its own.
        if not k.startswith(("RAG_", "HF_", "TRANSFORMERS_", "http_", "https_", "HTTP", "NO_PROXY"))
    }
    env.update(
        RAG_DATA_DIR=str(tmp_path / "data"),
        RAG_PORT=str(port),
        EGRESS_AUDIT_LOG=str(log),
        PYTHONPATH=os.pathsep.join(filter(None, [str(hook_dir), env.get("PYTHONPATH")])),
    )
    isolated = _netns_works()
    prefix = (
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] if isolated else []
    )

    ingest = subprocess.run(
        [*prefix, str(BIN / "rag-ingest"), str(EXAMPLES), "--json"], env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 5
    env["EGRESS_API_KEY"] = add_key(env)
    served = subprocess.run(
        [*prefix, sys.executable, str(tmp_path / "driver.py"), str(port), str(BIN / "rag-server")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr + served.stdout
    result = json.loads(served.stdout.strip().splitlines()[-1])
    assert result["ask_status"] == 200 and result["search_status"] == 200
    assert "27 days" in result["ask"]["answer"]

    records = [json.loads(line) for line in log.read_text().splitlines()]
    installed = [r for r in records if r["event"] == "hook-installed"]
    # The hook really ran in rag-ingest, the driver and rag-server (and their helpers).
    names = {Path(r["argv"][0]).name for r in installed}
    assert {"rag-ingest", "rag-server", "driver.py"} <= names, names
    network = [r for r in records if r["event"] != "hook-installed"]
    assert any(r["event"] == "socket.connect" for r in network)  # the driver's HTTP calls
    outside = [r for r in network if not _is_local(r)]
    assert outside == [], outside
    print(f"egress: {len(network)} socket events, all local; network namespace: {isolated}")
