"""A container engine driven from tests: docker where its engine answers, else podman (with runc
and the ulimits that work in our sandbox, as scripts/build-image.sh uses them).

Containers run on an internal network of the test's own (no route out; the host reaches them at
their address on it), as uid 10001 with a read-only root filesystem and a tmpfs /tmp, as the
Kubernetes manifests run them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

USER = "10001:10001"


def _engine() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0
    ):
        return [docker]
    podman = shutil.which("podman")
    if podman is None:
        raise AssertionError("neither a Docker engine nor podman: run .ci/ensure-podman")
    runtime = ["--runtime", "runc"] if shutil.which("runc") else []
    return [podman, *runtime]


@dataclass
class Engine:
    command: list[str] = field(default_factory=_engine)

    @property
    def name(self) -> str:
        return Path(self.command[0]).name

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        out = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)}: {out.returncode}\n{out.stderr}")
        return out.stdout + out.stderr if not check else out.stdout

    def limits(self) -> list[str]:
        return ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    def inspect(self, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.run("inspect", name))
        return found[0]


@dataclass
class Network:
    """An internal network: containers reach each other by name, and nothing outside."""

    engine: Engine
    name: str = field(default_factory=lambda: f"rag-test-{uuid.uuid4().hex[:8]}")
    containers: list[str] = field(default_factory=list)

    def __enter__(self) -> Network:
        self.engine.run("network", "create", "--internal", self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.containers:
            self.engine.run("rm", "-f", "-t", "0", name, check=False)
        self.engine.run("network", "rm", "-f", self.name, check=False)

    def container_args(
        self, env: dict[str, str], volumes: Sequence[str], alias: str | None
    ) -> list[str]:
        args = [
            "--network",
            self.name,
            "--user",
            USER,
            "--read-only",
            "--tmpfs",
            "/tmp:rw,size=512m",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            *self.engine.limits(),
        ]
        if alias:
            args += ["--network-alias", alias]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        return args

    def once(
        self,
        image: str,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        volumes: Sequence[str] = (),
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """A container that runs to its end (an ingest Job, a key command)."""
        args = self.container_args(env or {}, volumes, None)
        return subprocess.run(
            [*self.engine.command, "run", "--rm", *args, image, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self,
        image: str,
        name: str,
        command: Sequence[str] = (),
        env: dict[str, str] | None = None,
        volumes: Sequence[str] = (),
        alias: str | None = None,
    ) -> Container:
        full = f"{self.name}-{name}"
        args = self.container_args(env or {}, volumes, alias)
        self.engine.run("run", "-d", "--name", full, *args, image, *command)
        self.containers.append(full)
        return Container(self.engine, full, time.monotonic())


@dataclass
class Container:
    engine: Engine
    name: str
    started: float

    @property
    def address(self) -> str:
        networks = self.engine.inspect(self.name)["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"])

    def url(self, port: int, path: str) -> str:
        return f"http://{self.address}:{port}{path}"

    def logs(self) -> str:
        return self.engine.run("logs", self.name, check=False)

    def running(self) -> bool:
        return bool(self.engine.inspect(self.name)["State"]["Running"])

    def exit_code(self) -> int:
        return int(self.engine.inspect(self.name)["State"]["ExitCode"])

    def signal(self, name: str) -> None:
        self.engine.run("kill", "--signal", name, self.name)

    def wait(self, timeout: float) -> int:
        self.engine.run("wait", self.name, timeout=timeout)
        return self.exit_code()

    def peak_memory_mb(self) -> float:
        """The cgroup's high-water mark (v1 or v2), read inside the container."""
        for path in (
            "/sys/fs/cgroup/memory.peak",
            "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
        ):
            out = self.engine.run("exec", self.name, "cat", path, check=False).strip()
            if out.isdigit():
                return int(out) / 2**20
        raise AssertionError(f"no memory high-water mark readable in {self.name}")

    def wait_until(self, ok: Callable[[], bool], what: str, timeout: float) -> float:
        """Seconds from the container's start until `ok()`; fails with its log if it never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ok():
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            if not self.running():
                raise AssertionError(f"{self.name} exited before {what}:\n{self.logs()[-4000:]}")
            time.sleep(1)
        raise AssertionError(f"{self.name}: no {what} in {timeout} s:\n{self.logs()[-4000:]}")
