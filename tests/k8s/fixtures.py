"""The test control plane: ``control_plane`` (etcd + kube-apiserver, nothing else) and
``scheduling_cluster`` (another one with kube-scheduler, kube-controller-manager, kwok and two fake
nodes: ``gpu-node`` with one ``nvidia.com/gpu`` and ``cpu-node``). Both are session-scoped and stopped at
the end of the session. The binaries are built by ``scripts/k8s-binaries.sh`` on first use (many minutes
on a cold machine, then cached in ``~/.cache/melancia/k8s/bin`` for every clone on the machine;
``MELANCIA_K8S_BIN`` points elsewhere)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.controlplane import REQUIRED_BINARIES, SCHEDULING_BINARIES, ControlPlane, missing_binaries

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "k8s-binaries.sh"


def cache_dir() -> Path:
    """Where the scripts keep what they build and fetch (scripts/lib/common.sh: CACHE_ROOT)."""
    configured = os.environ.get("MELANCIA_CACHE")
    return Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "melancia"


def k8s_bin_dir() -> Path:
    configured = Path(os.environ.get("MELANCIA_K8S_BIN") or cache_dir() / "k8s/bin")
    return configured if configured.is_absolute() else REPO / configured


def assets_dir() -> Path:
    """Upstream CRDs and schemas (scripts/test-assets.sh), fetched on first use."""
    assets = cache_dir() / "assets"
    if not (assets / ".stamp").is_file():
        script = REPO / "scripts" / "test-assets.sh"
        result = subprocess.run([str(script)], check=False, cwd=REPO, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{script.name} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
                        pytrace=False)
    return assets


def ensure_binaries(names: tuple[str, ...]) -> Path:
    """Build the binaries when some are missing; fail the test with the script's output if the build fails."""
    bin_dir = k8s_bin_dir()
    if missing_binaries(bin_dir, names):
        result = subprocess.run([str(BUILD_SCRIPT)], check=False, cwd=REPO, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{BUILD_SCRIPT.name} failed ({result.returncode}):\n"
                        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
    return bin_dir


def _started(bin_dir: Path, work_dir: Path) -> ControlPlane:
    plane = ControlPlane(bin_dir, work_dir)
    try:
        return plane.start()
    except Exception as error:  # noqa: BLE001 - a control plane that does not start fails the tests
        pytest.fail(f"the test control plane did not start: {error}", pytrace=False)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver; ``.kubeconfig``, ``.server``, ``.token`` and ``.client`` (an ApiClient)."""
    plane = _started(ensure_binaries(REQUIRED_BINARIES), tmp_path_factory.mktemp("control-plane"))
    try:
        with plane.api_client() as client:
            plane.client = client
            yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def scheduling_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane whose pods are scheduled by the real kube-scheduler onto kwok's fake nodes and whose
    Jobs are run by the real Job controller (kwok completes the pods of a Job once they run)."""
    bin_dir = ensure_binaries(REQUIRED_BINARIES + SCHEDULING_BINARIES)
    missing = missing_binaries(bin_dir, SCHEDULING_BINARIES)
    if missing:  # MELANCIA_K8S_COMPONENTS left them out of the build: these tests cannot run without them
        pytest.fail(f"{', '.join(missing)} not built; unset MELANCIA_K8S_COMPONENTS or deselect with -m 'not k8s'",
                    pytrace=False)
    plane = _started(bin_dir, tmp_path_factory.mktemp("scheduling-cluster"))
    try:
        try:
            plane.start_scheduling()
        except Exception as error:  # noqa: BLE001
            pytest.fail(f"scheduler/controller-manager/kwok did not start: {error}", pytrace=False)
        with plane.api_client() as client:
            plane.client = client
            yield plane
    finally:
        plane.stop()
