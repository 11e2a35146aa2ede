"""The Kubernetes manifests: both overlays render with kubectl kustomize, every object passes strict
schema validation, and the policies hold (probes, resources, restricted pods, default-deny egress,
one Chroma replica, no overlapping ingests, settings the server accepts).

kubectl is required: CI installs it (.ci/run). Only RAG_SKIP_K8S_TESTS=1 turns these into skips.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import yaml

from rag_core.settings import load_settings
from tests.conftest import ROOT

K8S_VERSION = "1.32.0"
OVERLAYS = {
    "single-node": ROOT / "k8s" / "overlays" / "single-node",
    "scale-out": ROOT / "k8s" / "overlays" / "scale-out",
    "scale-out+external-generator": ROOT / "tests" / "k8s" / "scale-out-external-generator",
}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob"}
LONG_RUNNING = {"Deployment", "StatefulSet"}

Obj = dict[str, Any]


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("RAG_SKIP_K8S_TESTS") == "1":
            pytest.skip("kubectl not installed and RAG_SKIP_K8S_TESTS=1")
        pytest.fail("kubectl is required for the manifest tests: run .ci/ensure-kubectl")
    return found


@cache
def _render_cached(overlay: str) -> tuple[Obj, ...]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(OVERLAYS[overlay])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def render(overlay: str) -> list[Obj]:
    """A fresh copy each time, so no test can change what another one sees."""
    return copy.deepcopy(list(_render_cached(overlay)))


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(obj: Obj) -> Obj:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def containers(obj: Obj) -> Iterator[Obj]:
    spec = pod_spec(obj)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


@pytest.fixture(params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_object_passes_strict_schema_validation(overlay: str) -> None:
    import kubernetes_validate

    objects = render(overlay)
    assert len(objects) >= 12
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The validator is not a no-op: a misspelt field in our own Deployment fails."""
    import kubernetes_validate

    deployment = of_kind(render("scale-out"), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_every_container_has_resources_and_servers_have_all_three_probes(overlay: str) -> None:
    workloads = [o for o in render(overlay) if o["kind"] in WORKLOADS]
    assert {o["kind"] for o in workloads} >= {"Deployment", "Job", "CronJob"}
    for obj in workloads:
        for c in containers(obj):
            name = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            resources = c.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), (name, section)
            if obj["kind"] in LONG_RUNNING:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in c, (name, probe)
        if obj["kind"] == "Job":
            assert obj["spec"]["activeDeadlineSeconds"] > 0  # a hung batch run is stopped
        if obj["kind"] == "CronJob":
            assert obj["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0


def test_api_probes_are_sized_for_model_load_and_liveness_checks_only_the_process(
    overlay: str,
) -> None:
    api = next(
        o for o in of_kind(render(overlay), "Deployment") if o["metadata"]["name"] == "rag-api"
    )
    c = pod_spec(api)["containers"][0]
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert startup["httpGet"]["path"] == "/healthz"


def test_pods_meet_the_restricted_pod_security_standard(overlay: str) -> None:
    objects = render(overlay)
    namespace = of_kind(objects, "Namespace")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in (o for o in objects if o["kind"] in WORKLOADS):
        spec = pod_spec(obj)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert all("hostPath" not in v for v in spec.get("volumes", []))
        for c in containers(obj):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert not sc.get("privileged") and "add" not in sc["capabilities"]
            writable = [m["mountPath"] for m in c.get("volumeMounts", []) if not m.get("readOnly")]
            assert set(writable) <= {"/tmp", "/var/lib/rag", "/data"}, writable


def _egress_targets(policy: Obj) -> Iterator[tuple[str, int]]:
    """(what, port) for every egress destination a policy allows."""
    for rule in policy["spec"].get("egress", []):
        ports = [p["port"] for p in rule.get("ports", [])]
        assert ports, f"{policy['metadata']['name']}: an egress rule without ports allows all"
        assert rule.get("to"), f"{policy['metadata']['name']}: an egress rule to anywhere"
        for peer in rule["to"]:
            assert "ipBlock" not in peer, "egress to an IP block"
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
            if labels.get("k8s-app") == "kube-dns":
                assert namespace == {"kubernetes.io/metadata.name": "kube-system"}
                what = "dns"
            elif labels == {"app.kubernetes.io/name": "chroma"} and not namespace:
                what = "chroma"
            elif labels == {"app.kubernetes.io/name": "llm"}:
                what = "generator"
            else:
                raise AssertionError(f"unexpected egress peer {peer}")
            for port in ports:
                yield what, int(port)


def test_egress_is_denied_except_dns_and_chroma(overlay: str) -> None:
    policies = of_kind(render(overlay), "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "egress" not in p["spec"]]
    assert any("Egress" in p["spec"]["policyTypes"] for p in deny), "no default-deny egress"
    allowed = {target for p in policies for target in _egress_targets(p)}
    expected = {("dns", 53), ("chroma", 8000)}
    if overlay.endswith("external-generator"):
        expected.add(("generator", 8080))
    assert allowed == expected


def test_chroma_runs_as_one_replica_only_in_scale_out() -> None:
    scale_out = render("scale-out")
    chroma = of_kind(scale_out, "StatefulSet")
    assert [s["metadata"]["name"] for s in chroma] == ["rag-chroma"]
    assert chroma[0]["spec"]["replicas"] == 1
    assert chroma[0]["spec"]["volumeClaimTemplates"]
    assert "rag-chroma" in {s["metadata"]["name"] for s in of_kind(scale_out, "Service")}
    api = of_kind(scale_out, "Deployment")[0]
    hpa = of_kind(scale_out, "HorizontalPodAutoscaler")[0]
    assert api["spec"]["replicas"] > 1 and hpa["spec"]["minReplicas"] > 1
    assert hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    assert _settings(scale_out)["RAG_STORE__MODE"] == "http"
    assert _settings(scale_out)["RAG_STORE__HOST"] == "rag-chroma"

    single = render("single-node")
    assert not of_kind(single, "StatefulSet") and not of_kind(single, "HorizontalPodAutoscaler")
    assert of_kind(single, "Deployment")[0]["spec"]["replicas"] == 1
    assert _settings(single)["RAG_STORE__MODE"] == "embedded"


def test_single_node_ingest_writes_the_api_pods_store_volume() -> None:
    objects = render("single-node")
    claims = {}
    for obj in (o for o in objects if o["kind"] in WORKLOADS):
        volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        claims[obj["kind"]] = volumes["data"]["persistentVolumeClaim"]["claimName"]
        assert "emptyDir" not in volumes["data"]
    assert set(claims.values()) == {"rag-data"}
    assert "rag-data" in {p["metadata"]["name"] for p in of_kind(objects, "PersistentVolumeClaim")}


def test_ingest_cronjob_forbids_overlap_and_matches_the_job(overlay: str) -> None:
    objects = render(overlay)
    cron = of_kind(objects, "CronJob")[0]
    job = of_kind(objects, "Job")[0]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod_spec(cron) == pod_spec(job)  # two copies of one template must not drift
    command = pod_spec(job)["containers"][0]["command"]
    assert command[0] == "rag-ingest" and "--sync" in command


def _settings(objects: list[Obj]) -> dict[str, str]:
    found: dict[str, str] = {}
    for config in of_kind(objects, "ConfigMap"):
        found.update({k: str(v) for k, v in config.get("data", {}).items() if k.startswith("RAG_")})
    return found


def test_every_rag_setting_in_the_configmaps_is_accepted(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    values = _settings(render(overlay))
    assert values
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # raises ConfigError naming any variable it does not accept
    assert settings.store.mode == values["RAG_STORE__MODE"]
    assert settings.shutdown_grace_s == float(values["RAG_SHUTDOWN_GRACE_S"])
    if "RAG_GENERATOR__BACKEND" in values:
        assert settings.generator.backend == values["RAG_GENERATOR__BACKEND"]


def test_api_keys_come_from_the_secret_not_the_configmap(overlay: str) -> None:
    objects = render(overlay)
    assert not any(k.startswith("RAG_AUTH__") for k in _settings(objects))
    api = of_kind(objects, "Deployment")[0]
    spec = pod_spec(api)
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["RAG_AUTH__KEYS_FILE"] == "/etc/rag/keys/keys.json"
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "api-keys")
    assert mount["mountPath"] == "/etc/rag/keys" and mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == "api-keys")
    secret = next(s for s in of_kind(objects, "Secret") if s["metadata"]["name"] == "rag-api-keys")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert "keys.json" in secret.get("stringData", secret.get("data", {}))


def test_shutdown_fits_in_the_termination_grace_period(overlay: str) -> None:
    objects = render(overlay)
    spec = pod_spec(of_kind(objects, "Deployment")[0])
    pause = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = float(_settings(objects)["RAG_SHUTDOWN_GRACE_S"])
    assert pause + grace < spec["terminationGracePeriodSeconds"]
