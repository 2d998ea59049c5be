"""The local cluster's component settings that running pods proved necessary (no cluster needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from localcluster import components, host
from localcluster.config import ClusterConfig
from localcluster.pki import KeyPair


def _kubelet_config(tmp_path: Path) -> dict:
    config = ClusterConfig(cache=tmp_path, node_ip="192.0.2.10")
    (config.run).mkdir(parents=True)
    pair = KeyPair(tmp_path / "k.crt", tmp_path / "k.key")
    argv = components.kubelet_argv(config, {"kubelet-serving": pair}, tmp_path / "kubelet.kubeconfig")
    path = Path(next(a for a in argv if a.startswith("--config=")).split("=", 1)[1])
    return yaml.safe_load(path.read_text())


def test_the_kubelet_never_evicts_or_collects_images_for_disk_percentages(tmp_path: Path):
    # On a shared 250 GB disk, the default thresholds (a percentage of the disk) evicted every pod of the
    # chart while gigabytes were free, and image GC would delete the images the tests just pushed.
    kubelet = _kubelet_config(tmp_path)
    assert {kubelet["evictionHard"][k] for k in ("nodefs.available", "imagefs.available", "nodefs.inodesFree")} == {"0%"}
    assert kubelet["imageGCHighThresholdPercent"] == 100
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"


@pytest.mark.cluster
def test_down_unmounts_a_stacked_bind_mount_of_a_folder_onto_itself(tmp_path: Path):
    # dockerd bind-mounts its data root onto itself; one killed with -9 left that mount behind, and the
    # next dockerd stacked another: `down` must leave none.
    if os.geteuid() != 0:
        pytest.fail("needs root (mount), like the rest of the cluster tier", pytrace=False)
    folder = tmp_path / "docker"
    (folder / "sub").mkdir(parents=True)
    for target in (folder, folder, folder / "sub"):
        subprocess.run(["mount", "--bind", str(target), str(target)], check=True)

    host.unmount_under(folder)

    assert str(folder) not in Path("/proc/self/mountinfo").read_text()


def test_the_node_drops_builds_the_registry_has_replaced(monkeypatch, tmp_path: Path):
    from localcluster import images

    config = ClusterConfig(cache=tmp_path, node_ip="192.0.2.10")
    registry = {"localhost:5001/melancia/api:test": "sha256:new", "localhost:5001/melancia/api:dev": "sha256:old"}
    monkeypatch.setattr(images, "registry_digest", lambda _, ref: registry.get(ref))
    node = [("localhost:5001/melancia/api:test", "sha256:older"),      # rebuilt since: stale
            ("localhost:5001/melancia/api:dev", "sha256:old"),          # still what dev names
            ("localhost:5001/melancia/api@sha256:older", "sha256:older"),  # pulled by digest, no tag has it
            ("localhost:5001/melancia/api@sha256:old", "sha256:old"),
            ("localhost:5001/melancia/pause:3.10", "sha256:p"),          # no such tag in the registry: kept
            ("docker.io/library/busybox:1", "sha256:b")]                 # not ours
    assert images.stale_node_images(config, node) == ["localhost:5001/melancia/api:test",
                                                       "localhost:5001/melancia/api@sha256:older"]
