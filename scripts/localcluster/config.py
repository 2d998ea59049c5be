"""Where the local cluster keeps its files, which addresses and ports it uses, and the versions it runs.

Two folders: the cache (``~/.cache/melancia/cluster``: binaries, images, the registry's storage,
containerd's content store; kept across ``down`` so the next ``up`` is quick) and the run folder
(``<cache>/run``: certificates, etcd, logs, pid files, kubelet and CNI state; made by ``up`` and removed
by ``down``). Everything ``up`` changes outside them (the bridge, iptables chains, mounts, cgroups,
``net.ipv4.ip_forward``) is recorded in the run folder so that ``down`` undoes exactly that.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def read_versions(path: Path = REPO / "scripts" / "versions.env") -> dict[str, str]:
    """``scripts/versions.env`` as a dict (``NAME=value`` lines; comments and blanks ignored)."""
    versions = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z0-9_]+)=(\S+)", line)
        if not match:
            raise ValueError(f"{path}:{number}: expected NAME=value, got {line!r}")
        versions[match[1]] = match[2]
    return versions


def cache_root() -> Path:
    configured = os.environ.get("MELANCIA_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "melancia"


def primary_address() -> str:
    """The address of the interface that holds the default route: the node's InternalIP, which pods
    reach the API server on (a loopback address would not be reachable from a pod)."""
    configured = os.environ.get("MELANCIA_CLUSTER_NODE_IP")
    if configured:
        return configured
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.51.100.1", 9))  # no packet is sent: connect() on UDP only picks the route
        address = probe.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        raise RuntimeError("no non-loopback address with a default route; set MELANCIA_CLUSTER_NODE_IP")
    return address


@dataclass(frozen=True)
class ClusterConfig:
    """Everything the components are started with; one instance describes one cluster."""

    cache: Path = field(default_factory=lambda: cache_root() / "cluster")
    k8s_bin: Path = field(default_factory=lambda: Path(os.environ.get("MELANCIA_K8S_BIN") or cache_root() / "k8s/bin"))
    node_ip: str = field(default_factory=primary_address)
    node_name: str = "melancia-node"
    gpu_node_name: str = "gpu-node"
    apiserver_port: int = 16443
    etcd_port: int = 12379
    registry_port: int = 5001
    service_cidr: str = "10.96.0.0/16"
    pod_subnet: str = "10.244.0.0/24"
    fake_pod_cidr: str = "10.245.0.0/16"  # kwok's fake pod IPs, apart from the real ones
    cluster_domain: str = "cluster.local"
    bridge: str = "melancia0"
    mtu: int = 1400
    versions: dict[str, str] = field(default_factory=read_versions)

    @property
    def run(self) -> Path:
        return self.cache / "run"

    @property
    def bin(self) -> Path:
        return self.cache / "bin"

    @property
    def helm_bin(self) -> Path:
        return cache_root() / "helm/bin"

    @property
    def logs(self) -> Path:
        return self.run / "logs"

    @property
    def pki(self) -> Path:
        return self.run / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.run / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{self.apiserver_port}"

    @property
    def kubernetes_service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def dns_service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def registry(self) -> str:
        """The registry as image names spell it (containerd and Docker both reach it on loopback)."""
        return f"localhost:{self.registry_port}"

    @property
    def docker_socket(self) -> Path:
        return self.run / "docker" / "docker.sock"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"

    def image(self, name: str, tag: str) -> str:
        return f"{self.registry}/melancia/{name}:{tag}"

    def env(self) -> dict[str, str]:
        """What a shell needs to use the cluster: ``eval "$(scripts/local-cluster.sh env)"``."""
        return {"KUBECONFIG": str(self.kubeconfig), "DOCKER_HOST": f"unix://{self.docker_socket}",
                "DOCKER_BUILDKIT": "1", "MELANCIA_REGISTRY": self.registry,
                "PATH": f"{self.helm_bin}:{os.environ.get('PATH', '')}"}
