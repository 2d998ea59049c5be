"""The one-node cluster of ``scripts/local-cluster.sh`` for the ``cluster`` tests: brought up once per
session (with the images built and pushed to its registry), taken down at the end.

On a machine that cannot run it (not root, no Docker engine, no containerd) the tests fail with that
reason: the cluster tier is part of ``make test`` and never skips silently.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcluster import cluster, host
from localcluster.config import REPO, ClusterConfig
from localcluster.processes import ClusterError

SCRIPT = REPO / "scripts" / "local-cluster.sh"
# The tag the tests build, push and install (values-local.yaml pulls it with pullPolicy Always).
TAG = "test"


def _run_script(*args: str, log: Path) -> None:
    with log.open("ab") as sink:
        result = subprocess.run([str(SCRIPT), *args], stdout=sink, stderr=subprocess.STDOUT, check=False, cwd=REPO)
    if result.returncode != 0:
        pytest.fail(f"scripts/local-cluster.sh {' '.join(args)} failed ({result.returncode}); "
                    f"last lines of {log}:\n{log.read_text(errors='replace')[-6000:]}", pytrace=False)


@dataclass(frozen=True)
class LocalCluster:
    config: ClusterConfig
    host_before: dict[str, Any]
    """The host as it was before ``up`` (what ``down`` must give back)."""
    log: Path


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The cluster up, the project's images built and pushed with tag :data:`TAG`; down at the end (a test
    may have taken it down already, which makes this a no-op)."""
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root: the kubelet, containerd, CNI and dockerd run as root", pytrace=False)
    log = tmp_path_factory.mktemp("local-cluster") / "local-cluster.log"
    config = ClusterConfig()
    if config.run.exists() and cluster.status(config, quiet=True) != 0:
        cluster.down(config)  # a half-dead cluster from an earlier session: start from a clean host
    # A healthy cluster that is already up is used as it is (its host snapshot is the one up recorded);
    # the last test takes it down either way.
    before = host.load_snapshot(config) if config.run.exists() else host.snapshot(config)
    started = time.monotonic()
    _run_script("up", log=log)
    up_s = time.monotonic() - started
    try:
        _run_script("images", TAG, log=log)
        print(f"\nlocal cluster up in {up_s:.0f} s, images in {time.monotonic() - started - up_s:.0f} s (log: {log})")
        yield LocalCluster(config, before, log)
    finally:
        try:
            cluster.down(config)
        except ClusterError as error:
            pytest.fail(f"scripts/local-cluster.sh down failed: {error}", pytrace=False)

