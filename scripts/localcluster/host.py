"""What the node changes on the host, recorded before ``up`` and removed by ``down``.

The kubelet, containerd and the CNI plugins leave things behind when they stop: mounts under the
kubelet's root, ``kubepods`` cgroups, ``cni-*`` network namespaces, the bridge, iptables chains
(``KUBE-*`` from kube-proxy and the kubelet, ``CNI-*`` from the bridge and portmap plugins) and
``net.ipv4.ip_forward`` switched on. :func:`snapshot` records their state before ``up``;
:func:`clean` removes only what is new since, and never touches what was there before.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from localcluster.config import ClusterConfig
from localcluster.processes import ClusterError, run

CGROUP_ROOT = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/var/run/netns")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
OUR_CHAIN = re.compile(r"^(KUBE-|CNI-)")
TABLES = ("filter", "nat", "mangle", "raw")
BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}


def ctr(config: ClusterConfig) -> list[str]:
    return ["ctr", "--address", str(config.containerd_socket), "--namespace", "k8s.io"]


def kubepods_cgroups() -> list[str]:
    return sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods") if p.is_dir())


def netns() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.glob("cni-*")) if NETNS_DIR.is_dir() else []


def iptables_chains() -> dict[str, list[str]]:
    """The user-defined chains of each table (empty when the table is not loaded)."""
    chains = {}
    for table in TABLES:
        out = run(["iptables-save", "-t", table], check=False).stdout
        names = (line[1:].split()[0] for line in out.splitlines() if line.startswith(":"))
        chains[table] = sorted(n for n in names if n not in BUILTIN_CHAINS)
    return chains


def iptables_rules() -> list[str]:
    """Every rule of every table, for comparing the host before ``up`` and after ``down``."""
    rules = []
    for table in TABLES:
        out = run(["iptables-save", "-t", table], check=False).stdout
        rules += [f"{table} {line}" for line in out.splitlines() if line.startswith("-A ")]
    return rules


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def snapshot(config: ClusterConfig) -> dict[str, Any]:
    return {"ip_forward": IP_FORWARD.read_text().strip(), "kubepods": kubepods_cgroups(), "netns": netns(),
            "chains": iptables_chains(), "rules": iptables_rules(), "bridge": link_exists(config.bridge)}


def load_snapshot(config: ClusterConfig) -> dict[str, Any]:
    path = config.run / "host-before.json"
    if path.is_file():
        return json.loads(path.read_text())
    # A run folder without a snapshot (up died before writing it): assume a host without our traces.
    return {"ip_forward": IP_FORWARD.read_text().strip(), "kubepods": [], "netns": [],
            "chains": {t: [] for t in TABLES}, "rules": [], "bridge": False}


def remove_pods(config: ClusterConfig, timeout_s: float = 90.0) -> None:
    """Delete every pod and wait until the kubelet has stopped their containers and sandboxes (stopping a
    sandbox is what runs CNI DEL: addresses, veths and masquerade rules go with it)."""
    from localcluster.addons import kubectl

    run([*kubectl(config), "delete", "pods", "--all", "--all-namespaces", "--grace-period=2", "--wait=false"],
        check=False, timeout_s=60)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tasks = run([*ctr(config), "tasks", "ls", "-q"], check=False).stdout.split()
        if not tasks:
            return
        time.sleep(1)
    print(f"local-cluster: containers still running after {timeout_s:.0f} s; stopping them directly")


def stop_containers(config: ClusterConfig) -> None:
    """Containers the kubelet did not stop, removed through containerd (which still runs); images stay."""
    if config.containerd_socket.exists() and run([*ctr(config), "version"], check=False).returncode == 0:
        for task in run([*ctr(config), "tasks", "ls", "-q"], check=False).stdout.split():
            run([*ctr(config), "tasks", "kill", "-s", "SIGKILL", task], check=False)
            run([*ctr(config), "tasks", "delete", "-f", task], check=False)
        for container in run([*ctr(config), "containers", "ls", "-q"], check=False).stdout.split():
            run([*ctr(config), "containers", "delete", container], check=False)


def stop_shims(config: ClusterConfig) -> None:
    """containerd-shim processes started for this cluster's containerd (their command line names its socket)."""
    marker = str(config.containerd_socket).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline and marker in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def unmount_under(*roots: Path) -> None:
    """Unmount every mount point at or below the given folders, deepest first, stacked ones too (dockerd
    bind-mounts its data root onto itself; one that was killed leaves that mount behind)."""
    folders = [str(r.resolve()) for r in roots if r.exists()]

    def points() -> list[str]:
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if any(point == f or point.startswith(f + "/") for f in folders):
                found.append(point)
        return sorted(found, key=len, reverse=True)

    for _ in range(10):  # a stacked mount needs one umount per layer
        left = points()
        if not left:
            return
        for point in left:
            if run(["umount", point], check=False).returncode != 0:
                run(["umount", "-l", point], check=False)


def kill_pod_processes(before: list[str], timeout_s: float = 15.0) -> None:
    """Processes still in the ``kubepods`` cgroups this cluster made: containers whose kubelet, containerd
    and shims were killed (a session ended with ``kill -9``) outlive them, and keep their cgroups busy."""
    def pids() -> set[int]:
        found = set()
        for top in kubepods_cgroups():
            if top in before:
                continue
            for procs in Path(top).rglob("cgroup.procs"):
                try:
                    found |= {int(pid) for pid in procs.read_text().split()}
                except OSError:
                    pass
        return found

    deadline = time.monotonic() + timeout_s
    while (left := pids()) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def remove_cgroups(before: list[str]) -> None:
    """The ``kubepods`` trees the kubelet made (rmdir bottom-up; a cgroup with tasks left is an error)."""
    for top in kubepods_cgroups():
        if top in before:
            continue
        for directory in sorted((p for p in Path(top).rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                reverse=True) + [Path(top)]:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError as error:
                raise ClusterError(f"cannot remove cgroup {directory}: {error} (processes left in it?)") from error


def remove_iptables(before: dict[str, list[str]], rules_before: list[str]) -> None:
    """Rules that jump to chains this cluster made, then those chains (flushed first)."""
    new_chains = {table: [c for c in iptables_chains()[table] if c not in before.get(table, []) and OUR_CHAIN.match(c)]
                  for table in TABLES}
    for table, chains in new_chains.items():
        if not chains:
            continue
        out = run(["iptables-save", "-t", table], check=False).stdout
        for line in out.splitlines():
            if not line.startswith("-A ") or f"{table} {line}" in rules_before:
                continue
            parts = line.split()
            if parts[1] not in chains and any(f"-j {c}" in line or f"-g {c}" in line for c in chains):
                run(["iptables", "-t", table, "-D", *parts[1:]], check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-F", chain], check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-X", chain], check=False)


def clean(config: ClusterConfig, before: dict[str, Any]) -> None:
    """After the daemons stopped: what they left on the host (see the module docstring)."""
    stop_shims(config)
    kill_pod_processes(before["kubepods"])
    unmount_under(config.run, config.cache / "containerd", config.cache / "docker")
    remove_cgroups(before["kubepods"])
    for name in netns():
        if name not in before["netns"]:
            run(["ip", "netns", "delete", name], check=False)
    if link_exists(config.bridge) and not before["bridge"]:
        run(["ip", "link", "delete", config.bridge], check=False)
    remove_iptables(before["chains"], before["rules"])
    IP_FORWARD.write_text(before["ip_forward"] + "\n")

