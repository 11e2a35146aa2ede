"""The container image, built and run the way an air-gapped site deploys it.

`make image`'s script builds it (a host wheelhouse, --network=none inside the build; the Debian
base made with mmdebstrap where no registry answers). Then, as the Kubernetes manifests run it
(uid 10001, read-only root, a tmpfs /tmp, a data volume, an internal network of the test's own):
an ingest Job's command over a mounted folder, the server (ready, an answer with citations, 401
without a key, SIGTERM drains a streamed answer), and the scale-out shape: the Chroma server from
the same image and two API containers with the rendered manifests' environment, ports and probes.

Figures (build time, size, start-to-ready, peak memory) are printed; `pytest -s` shows them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.containers import Container, Engine, Network
from tests.test_k8s import of_kind, render

pytestmark = pytest.mark.slow

IMAGE = "rag-server:latest"
QUESTION = "How many days of paid annual leave do employees get?"
READY_BOUND_S = 180  # measured here: see the printed figures and docs/deployment.md


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    """Built by the same script as `make image`, from this test's own venv."""
    env = {
        **os.environ,
        "VENV": sys.prefix,
        # No registry is reachable here: build on the Debian base the script makes (a site with a
        # registry leaves BASE_IMAGE unset and gets python:3.11-slim-bookworm).
        "BASE_IMAGE": os.environ.get("RAG_TEST_BASE_IMAGE", "rag-base:bookworm"),
    }
    began = time.monotonic()
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    print(f"\n[image] built in {time.monotonic() - began:.0f} s:\n{build.stdout}")
    return IMAGE


def _owned_dir(path: Path) -> Path:
    """A host folder the container's uid may write, as a pod's volume with fsGroup would be."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, 10001, 10001)
    else:  # rootless: the container's uid 10001 maps to a subordinate uid of ours
        path.chmod(0o777)
    return path


def _documents(tmp: Path) -> Path:
    docs = tmp / "documents"
    shutil.copytree(EXAMPLES, docs)
    return docs


def _ingest(net: Network, image: str, env: dict[str, str], volumes: list[str]) -> dict[str, Any]:
    """The ingest Job's own command (k8s/base/ingest-job.yaml), run to its end."""
    job = of_kind(render("single-node"), "Job")[0]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    done = net.once(image, command, env, volumes)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _add_key(net: Network, image: str, env: dict[str, str], volumes: list[str]) -> str:
    made = net.once(
        image,
        ["rag-server", "keys", "add", "--id", "tester", "--role", "admin", "--groups", "*"],
        env,
        volumes,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _ready(server: Container) -> float:
    return server.wait_until(
        lambda: httpx.get(server.url(8000, "/readyz"), timeout=5).status_code == 200,
        "readiness",
        READY_BOUND_S,
    )


def _ask(server: Container, token: str | None, **extra: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"question": QUESTION, **extra}
    return httpx.post(server.url(8000, "/v1/ask"), json=body, headers=headers, timeout=120)


def test_the_image_is_a_non_root_offline_build_with_its_models_inside(
    engine: Engine, image: str
) -> None:
    config = engine.inspect(image)["Config"]
    assert config["User"] == "10001:10001"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HF_HUB_OFFLINE"] == "1" and env["ANONYMIZED_TELEMETRY"] == "False"
    # Caches and HOME under /tmp: with a read-only root, nothing else is writable.
    for name in ("HOME", "HF_HOME", "XDG_CACHE_HOME", "TORCH_HOME"):
        assert env[name].startswith("/tmp"), name
    # The image's own RAG_* settings are valid, and the models point inside the image.
    rag = {k: v for k, v in env.items() if k.startswith("RAG_")}
    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            "from rag_core.settings import load_settings as l; "
            "s = l(); print(s.data_dir, s.models_home, s.generator.model_path)",
        ],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RAG_")}, **rag},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert checked.stdout.split() == [
        "/var/lib/rag",
        "/opt/rag/models",
        "/opt/rag/models/gemma-3-270m-q4_k_m.gguf",
    ]
    listing = engine.run(
        "run",
        "--rm",
        *engine.limits(),
        "--network=none",
        image,
        "sh",
        "-c",
        "ls /opt/rag/models /opt/rag/models/embedder/*/; command -v gcc || true",
    )
    # The GGUF assembled and the embedder exported at build time, not in every pod start.
    assert "gemma-3-270m-q4_k_m.gguf" in listing and "model.onnx" in listing
    assert "/gcc" not in listing  # no compiler in the runtime image
    size_mb = int(engine.inspect(image)["Size"]) / 1e6
    print(f"\n[image] {image}: {size_mb:.0f} MB")


def test_ingest_then_serve_on_a_read_only_root_with_citations_and_keys(
    engine: Engine, image: str, tmp_path: Path
) -> None:
    data = _owned_dir(tmp_path / "data")
    volumes = [f"{data}:/var/lib/rag", f"{_documents(tmp_path)}:/srv/documents:ro"]
    with Network(engine) as net:
        report = _ingest(net, image, {}, volumes)
        assert report["added"] == 5 and report["failed"] == [] and report["chunks"] > 0
        token = _add_key(net, image, {}, volumes)
        server = net.start(image, "api", volumes=volumes)
        ready_s = _ready(server)
        answer = _ask(server, token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "27 days" in body["answer"], body
        assert body["citations"] and body["citations"][0]["document_id"] == "leave-policy.docx"
        denied = _ask(server, None)
        assert denied.status_code == 401
        assert denied.headers["content-type"].startswith("application/problem+json")
        assert httpx.get(server.url(8000, "/healthz"), timeout=5).status_code == 200
        # Nothing was exported or assembled at start: the models came from the image.
        assert not (data / "models").exists()
        print(
            f"\n[image] single node: ready {ready_s:.1f} s after start, "
            f"peak {server.peak_memory_mb():.0f} MiB"
        )


def test_sigterm_drains_a_streamed_answer(engine: Engine, image: str, tmp_path: Path) -> None:
    data = _owned_dir(tmp_path / "data")
    volumes = [f"{data}:/var/lib/rag", f"{_documents(tmp_path)}:/srv/documents:ro"]
    with Network(engine) as net:
        _ingest(net, image, {}, volumes)
        token = _add_key(net, image, {}, volumes)
        # The model writes, so the answer in flight at SIGTERM is a generation of some seconds.
        env = {"RAG_GROUNDING__ANSWER_MODE": "generate", "RAG_SHUTDOWN_GRACE_S": "60"}
        server = net.start(image, "api", env=env, volumes=volumes)
        _ready(server)
        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(timeout=120, headers=headers) as client,
            client.stream(
                "POST", server.url(8000, "/v1/ask"), json={"question": QUESTION, "stream": True}
            ) as stream,
        ):
            lines = stream.iter_lines()
            assert next(lines) == "event: sources"  # in flight: retrieval is done
            server.signal("TERM")
            rest = "\n".join(lines)
        assert "event: final" in rest, rest[-2000:]
        final = json.loads(rest.split("event: final", 1)[1].split("data:", 1)[1].split("\n")[0])
        assert "27 days" in final["answer"]
        assert server.wait(timeout=90) == 0, server.logs()[-3000:]
        assert "Application shutdown complete" in server.logs()


def _config_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (config,) = [
        o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith("rag-config")
    ]
    return {str(k): str(v) for k, v in config["data"].items()}


def _container(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (workload,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return spec


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def _probe_paths(container: dict[str, Any]) -> set[str]:
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    return {container[p]["httpGet"]["path"] for p in probes}


@pytest.fixture
def scale_out(engine: Engine, image: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The scale-out overlay's shape: Chroma (the StatefulSet's command) and two API replicas
    (the Deployment's env and the ConfigMap), on one network where `rag-chroma` is Chroma's name,
    as the Service makes it in the cluster."""
    objects = render("scale-out")
    config = _config_env(objects)
    chroma_spec = _container(objects, "StatefulSet", "rag-chroma")
    api_spec = _container(objects, "Deployment", "rag-api")
    assert config["RAG_STORE__HOST"] == "rag-chroma" and config["RAG_STORE__MODE"] == "http"
    keys = _owned_dir(tmp_path / "keys")
    with Network(engine) as net:
        chroma = net.start(
            image,
            "chroma",
            command=chroma_spec["command"],
            env=_env(chroma_spec),
            volumes=[f"{_owned_dir(tmp_path / 'chroma')}:/data"],
            alias="rag-chroma",
        )
        (chroma_probe,) = _probe_paths(chroma_spec)
        port = chroma_spec["ports"][0]["containerPort"]
        chroma_ready = chroma.wait_until(
            lambda: httpx.get(chroma.url(port, chroma_probe), timeout=5).status_code == 200,
            "Chroma heartbeat",
            120,
        )
        docs = f"{_documents(tmp_path)}:/srv/documents:ro"
        scratch = f"{_owned_dir(tmp_path / 'ingest-data')}:/var/lib/rag"
        report = _ingest(net, image, config, [scratch, docs])
        assert report["added"] == 5, report
        api_env = {**config, **_env(api_spec)}
        keys_dir = api_env["RAG_AUTH__KEYS_FILE"].rsplit("/", 1)[0]
        token = _add_key(net, image, api_env, [f"{keys}:{keys_dir}"])
        apis = [
            net.start(
                image,
                f"api-{n}",
                command=api_spec["command"],
                env=api_env,
                volumes=[
                    f"{_owned_dir(tmp_path / f'api-{n}')}:/var/lib/rag",
                    f"{keys}:{keys_dir}:ro",
                ],
            )
            for n in (1, 2)
        ]
        yield {
            "apis": apis,
            "chroma": chroma,
            "token": token,
            "api_spec": api_spec,
            "chroma_ready_s": chroma_ready,
        }


def test_scale_out_chroma_and_two_api_containers_from_the_manifests(
    scale_out: dict[str, Any],
) -> None:
    api_spec = scale_out["api_spec"]
    port = api_spec["ports"][0]["containerPort"]
    assert port == 8000
    readiness = []
    for api in scale_out["apis"]:
        readiness.append(_ready(api))
        for path in _probe_paths(api_spec):  # every probe the kubelet would call answers 200
            assert httpx.get(api.url(port, path), timeout=5).status_code == 200, path
    for api in scale_out["apis"]:
        answer = _ask(api, scale_out["token"])
        assert answer.status_code == 200, answer.text
        assert "27 days" in answer.json()["answer"]
        assert answer.json()["citations"][0]["document_id"] == "leave-policy.docx"
    peaks = [c.peak_memory_mb() for c in [scale_out["chroma"], *scale_out["apis"]]]
    print(
        f"\n[image] scale-out: Chroma ready {scale_out['chroma_ready_s']:.1f} s, APIs ready "
        f"{', '.join(f'{r:.1f}' for r in readiness)} s; peak MiB chroma/api/api "
        f"{'/'.join(f'{p:.0f}' for p in peaks)}"
    )
