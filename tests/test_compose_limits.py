"""deploy/compose.yaml keeps every container within the memory its Kubernetes twin gets (the
single-node `local` overlay, which is what compose runs), and rotates every container's log,
so no process can take the host's memory or fill its disk."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose.yaml"
LOCAL_OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "local"
# Compose's name for a workload whose k8s name differs.
K8S_NAME = {"smtp": "mailpit"}
UNITS = {"m": 2**20, "mi": 2**20, "g": 2**30, "gi": 2**30}


def services() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return found


def size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([mMgG]i?)", str(text))
    assert match, f"not a memory size: {text!r}"
    return int(match[1]) * UNITS[match[2].lower()]


@pytest.fixture(scope="module")
def k8s_limits() -> dict[str, int]:
    """Each workload's memory limit (its first container's), by name without a version."""
    kubectl = Path(sys.executable).parent / "kubectl"
    run = subprocess.run(
        [str(kubectl), "kustomize", str(LOCAL_OVERLAY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    limits = {}
    for doc in yaml.safe_load_all(run.stdout):
        if doc and doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            container = doc["spec"]["template"]["spec"]["containers"][0]
            name = doc["metadata"]["name"].removesuffix("-v1")
            limits[name] = size(container["resources"]["limits"]["memory"])
    return limits


@pytest.mark.parametrize("name", sorted(services()))
def test_every_container_has_the_memory_limit_of_its_k8s_twin(
    name: str, k8s_limits: dict[str, int]
) -> None:
    limit = services()[name].get("mem_limit")
    assert limit, f"{name} has no mem_limit"
    assert size(limit) == k8s_limits[K8S_NAME.get(name, name)], f"{name}: {limit}"


@pytest.mark.parametrize("name", sorted(services()))
def test_every_container_log_is_rotated(name: str) -> None:
    logging = services()[name].get("logging", {})
    assert logging.get("options", {}).get("max-size"), f"{name}: its log grows without end"
