"""The local cluster's component settings that running pods proved necessary (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from localcluster import components
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
