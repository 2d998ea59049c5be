"""``up``, ``down`` and ``status`` of the local cluster.

``up`` is idempotent: with every daemon running it only reports; with some dead (a crash, a machine
that rebooted) it cleans up what is left and starts again. ``down`` undoes exactly what ``up`` did, in
reverse: pods (through the kubelet, so CNI releases their addresses and veths), then the daemons by
pid, then what the node left on the host (mounts, ``kubepods`` cgroups, network namespaces, the
bridge, iptables chains, ``ip_forward``), then the run folder. The host state before ``up`` is kept in
``run/host-before.json`` so ``down`` touches nothing that was already there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from localcluster import addons, components, host, images
from localcluster.config import REPO, ClusterConfig
from localcluster.processes import ClusterError, Daemon, http_ok, insecure_context, run

# Start order; ``down`` stops them in reverse.
DAEMONS = ("registry", "dockerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
           "containerd", "kubelet", "kube-proxy", "kwok")
ADDON_DEPLOYMENTS = (("kube-system", "coredns"), ("local-path-storage", "local-path-provisioner"),
                     (addons.KSERVE_NAMESPACE, "kserve-controller-manager"))


def daemon(config: ClusterConfig, name: str) -> Daemon:
    return Daemon(name, config.run)


def timed(step: str, times: dict[str, float], action: Callable[[], object]) -> None:
    started = time.monotonic()
    print(f"local-cluster: {step} ...", flush=True)
    action()
    times[step] = round(time.monotonic() - started, 1)
    print(f"local-cluster: {step} done in {times[step]:.1f} s", flush=True)


def prerequisites(config: ClusterConfig) -> None:
    if os.geteuid() != 0:
        raise ClusterError("the local cluster needs root (kubelet, containerd, CNI and dockerd run as root)")
    for program in ("containerd", "runc", "dockerd", "docker-registry", "iptables", "ip"):
        components.find_program(program, f"/usr/bin/{program}", f"/usr/sbin/{program}", f"/sbin/{program}")
    if not Path("/usr/lib/cni/bridge").is_file():
        raise ClusterError("CNI plugins not found in /usr/lib/cni (Debian: apt-get install containernetworking-plugins)")
    for script in ("k8s-binaries.sh", "cluster-binaries.sh", "helm-binaries.sh"):
        result = subprocess.run([str(REPO / "scripts" / script)], check=False)
        if result.returncode != 0:
            raise ClusterError(f"scripts/{script} failed ({result.returncode})")


def up(config: ClusterConfig) -> dict[str, float]:
    """Start every component and addon; returns the seconds each step took."""
    prerequisites(config)
    states = {name: daemon(config, name).running() for name in DAEMONS}
    if all(states.values()):
        if all(deployment_available(config, ns, name) for ns, name in ADDON_DEPLOYMENTS):
            print(f"local-cluster: already up ({config.server})")
            return {}
        times: dict[str, float] = {}
        timed("addons", times, lambda: _install_addons(config))
        return times
    if any(states.values()) or config.run.exists():
        print("local-cluster: a previous cluster was left half-running: cleaning it up first")
        down(config)
    config.run.mkdir(parents=True)
    (config.run / "host-before.json").write_text(json.dumps(host.snapshot(config)))
    times: dict[str, float] = {}
    try:
        pki = components.write_pki(config)
        kubeconfigs = {user: components.write_kubeconfig(config, config.run / f"{user}.kubeconfig", user, pki[user])
                       for user in ("controller-manager", "scheduler", "kube-proxy", "kubelet")}
        components.write_kubeconfig(config, config.kubeconfig, "admin", pki["admin"])
        timed("registry and docker", times, lambda: _start_image_services(config))
        timed("cluster images", times, lambda: images.cluster_images(config))
        timed("control plane", times, lambda: _start_control_plane(config, pki, kubeconfigs))
        timed("node", times, lambda: _start_node(config, pki, kubeconfigs))
        timed("addons", times, lambda: _install_addons(config))
    except BaseException:
        print(f"local-cluster: up failed; logs in {config.logs}", flush=True)
        raise
    (config.run / "up-times.json").write_text(json.dumps(times))
    print(f"local-cluster: up in {sum(times.values()):.0f} s ({config.server}); "
          f"eval \"$(scripts/local-cluster.sh env)\" to use it")
    return times


def _start_image_services(config: ClusterConfig) -> None:
    registry = daemon(config, "registry")
    registry.start(components.registry_argv(config))
    registry.wait(lambda: http_ok(f"http://127.0.0.1:{config.registry_port}/v2/"), "/v2/", 30)
    dockerd = daemon(config, "dockerd")
    dockerd.start(components.dockerd_argv(config))
    dockerd.wait(lambda: run([*images.docker(config), "version"], check=False).returncode == 0, "docker version", 60)


def _start_control_plane(config: ClusterConfig, pki, kubeconfigs: dict[str, Path]) -> None:
    etcd = daemon(config, "etcd")
    etcd.start(components.etcd_argv(config))
    etcd.wait(lambda: http_ok(f"http://127.0.0.1:{config.etcd_port}/health"), "/health", 60)
    apiserver = daemon(config, "kube-apiserver")
    apiserver.start(components.apiserver_argv(config, pki))
    apiserver.wait(lambda: run([*addons.kubectl(config), "get", "--raw", "/readyz"], check=False).returncode == 0,
                   "/readyz", 180)
    manager = daemon(config, "kube-controller-manager")
    manager.start(components.controller_manager_argv(config, pki, kubeconfigs["controller-manager"]))
    scheduler = daemon(config, "kube-scheduler")
    scheduler.start(components.scheduler_argv(config, kubeconfigs["scheduler"]))
    manager.wait(lambda: http_ok("https://127.0.0.1:10257/healthz", context=insecure_context()), "/healthz", 90)
    scheduler.wait(lambda: http_ok("https://127.0.0.1:10259/healthz", context=insecure_context()), "/healthz", 90)


def _start_node(config: ClusterConfig, pki, kubeconfigs: dict[str, Path]) -> None:
    components.write_cni(config)
    containerd = daemon(config, "containerd")
    containerd.start(components.containerd_argv(config))
    containerd.wait(lambda: run(host.ctr(config) + ["version"], check=False).returncode == 0, "ctr version", 60)
    kubelet = daemon(config, "kubelet")
    kubelet.start(components.kubelet_argv(config, pki, kubeconfigs["kubelet"]))
    kubelet.wait(lambda: http_ok("http://127.0.0.1:10248/healthz"), "/healthz", 120)
    proxy = daemon(config, "kube-proxy")
    proxy.start(components.kube_proxy_argv(config, kubeconfigs["kube-proxy"]))
    proxy.wait(lambda: http_ok("http://127.0.0.1:10256/healthz"), "/healthz", 60)
    kubelet.wait(lambda: node_ready(config, config.node_name), f"node {config.node_name} Ready", 120)
    kwok = daemon(config, "kwok")
    kwok.start(components.kwok_argv(config, config.kubeconfig))
    kwok.wait(lambda: http_ok("http://127.0.0.1:10247/healthz"), "/healthz", 60)
    addons.apply(config, [addons.gpu_node(config)])
    kwok.wait(lambda: node_ready(config, config.gpu_node_name), f"node {config.gpu_node_name} Ready", 60)


def node_ready(config: ClusterConfig, name: str) -> bool:
    result = run([*addons.kubectl(config), "get", "node", name, "-o",
                  "jsonpath={.status.conditions[?(@.type=='Ready')].status}"], check=False)
    return result.returncode == 0 and result.stdout.strip() == "True"


def _install_addons(config: ClusterConfig) -> None:
    base = images.base_image(config)
    addons.apply(config, addons.coredns(config))
    addons.apply(config, addons.local_path_storage(config, base))
    kserve = addons.kserve(config)
    crds = [d for d in kserve if d["kind"] == "CustomResourceDefinition"]
    addons.apply(config, crds, server_side=True)  # too large for the last-applied annotation
    established = [*addons.kubectl(config), "wait", "--for=condition=Established", "--timeout=10s",
                   *[f"crd/{d['metadata']['name']}" for d in crds]]
    daemon(config, "kube-apiserver").wait(lambda: run(established, check=False).returncode == 0,
                                          "KServe CRDs Established", 60)
    namespaces = [d for d in kserve if d["kind"] == "Namespace"]
    addons.apply(config, namespaces + [d for d in kserve if d["kind"] not in ("CustomResourceDefinition", "Namespace")])
    for namespace, name in ADDON_DEPLOYMENTS:
        wait_deployment(config, namespace, name)


def wait_deployment(config: ClusterConfig, namespace: str, name: str, timeout_s: int = 240) -> None:
    result = run([*addons.kubectl(config), "-n", namespace, "rollout", "status", f"deployment/{name}",
                  f"--timeout={timeout_s}s"], check=False)
    if result.returncode != 0:
        raise ClusterError(f"deployment {namespace}/{name} not available after {timeout_s} s:\n"
                           f"{result.stdout}{result.stderr}\n{diagnose(config, namespace)}")


def deployment_available(config: ClusterConfig, namespace: str, name: str) -> bool:
    result = run([*addons.kubectl(config), "-n", namespace, "get", "deployment", name, "-o",
                  "jsonpath={.status.availableReplicas}"], check=False)
    return result.returncode == 0 and result.stdout.strip() not in ("", "0")


def diagnose(config: ClusterConfig, namespace: str) -> str:
    """Pods, recent events and the logs of pods that are not ready: what a failure message needs."""
    k = addons.kubectl(config)
    parts = [run([*k, "-n", namespace, "get", "pods", "-o", "wide"], check=False).stdout,
             run([*k, "-n", namespace, "get", "events", "--sort-by=.lastTimestamp"], check=False).stdout[-4000:]]
    pods = run([*k, "-n", namespace, "get", "pods", "-o", "json"], check=False).stdout
    for pod in json.loads(pods or '{"items": []}')["items"]:
        ready = all(c.get("ready") for c in pod.get("status", {}).get("containerStatuses", []) or [{}])
        if not ready:
            name = pod["metadata"]["name"]
            logs = run([*k, "-n", namespace, "logs", name, "--all-containers", "--tail=40"], check=False)
            parts.append(f"--- logs of {name}:\n{(logs.stdout + logs.stderr)[-3000:]}")
    return "\n".join(parts)


def down(config: ClusterConfig) -> None:
    """Stop everything ``up`` started and remove what it left on the host; a no-op when nothing is up."""
    if not config.run.exists():
        print("local-cluster: not up")
        return
    before = host.load_snapshot(config)
    if daemon(config, "kube-apiserver").running() and daemon(config, "kubelet").running():
        for name in ("kwok", "kube-controller-manager", "kube-scheduler"):  # nothing recreates pods now
            daemon(config, name).stop()
        host.remove_pods(config)
    for name in reversed(DAEMONS):
        if name == "containerd":
            host.stop_containers(config)
        daemon(config, name).stop()
    collect_registry_garbage(config)
    run(components.kube_proxy_cleanup_argv(config), check=False)
    host.clean(config, before)
    shutil.rmtree(config.run, ignore_errors=False)
    print("local-cluster: down")


def collect_registry_garbage(config: ClusterConfig) -> None:
    """With the registry stopped: blobs of manifests no tag names any more (each rebuild of the torch
    layers pushed GBs that nothing referenced)."""
    settings = config.run / "registry.yml"
    if settings.is_file() and (config.cache / "registry").is_dir():
        registry = components.find_program("docker-registry", "/usr/bin/docker-registry")
        result = run([registry, "garbage-collect", "--delete-untagged", str(settings)], check=False, timeout_s=600)
        if result.returncode != 0:
            print(f"local-cluster: registry garbage collection failed: {(result.stdout + result.stderr)[-500:]}")


def status(config: ClusterConfig, *, quiet: bool = False) -> int:
    """Each daemon, the nodes and the addons (printed unless ``quiet``); 0 only when all are up."""
    checks: list[tuple[str, bool, str]] = []
    for name in DAEMONS:
        pid = daemon(config, name).pid()
        checks.append((name, pid is not None, f"running (pid {pid})" if pid else "stopped"))
    if daemon(config, "kube-apiserver").running():
        for node in (config.node_name, config.gpu_node_name):
            ready = node_ready(config, node)
            checks.append((f"node {node}", ready, "Ready" if ready else "NotReady"))
        for namespace, name in ADDON_DEPLOYMENTS:
            available = deployment_available(config, namespace, name)
            checks.append((f"{namespace}/{name}", available, "available" if available else "not available"))
    if not quiet:
        for what, _, state in checks:
            print(f"{what:42} {state}")
    return 0 if all(ok for _, ok, _ in checks) else 1
