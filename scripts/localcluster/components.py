"""Each component's command line and config files, written into the run folder.

The flags follow Kubernetes' ``hack/local-up-cluster.sh``; what differs is written down where it
differs: the kubelet runs on cgroup v1 (``failCgroupV1: false``) with the cgroupfs driver, containerd's
CRI plugin may not lower ``oom_score_adj`` on this kind of machine (``restrict_oom_score_adj``), and
kube-proxy leaves the host's sysctls alone (no localhost NodePorts, no conntrack resizing).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from localcluster.config import ClusterConfig
from localcluster.pki import CertificateAuthority, KeyPair

ADMIN = ("admin", ("system:masters",))


def find_program(name: str, *candidates: str) -> str:
    """An executable from PATH or the given absolute paths; Debian's docker client lives in /usr/bin,
    where a newer client without buildx may shadow it on PATH."""
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found (Debian: apt-get install {name})")
    return found


# -- certificates and kubeconfigs -------------------------------------------------------------------


def write_pki(config: ClusterConfig) -> dict[str, KeyPair]:
    """Every identity of the cluster, as kubeadm issues them."""
    ca = CertificateAuthority(config.pki)
    hosts = ("localhost", "127.0.0.1", config.node_ip, config.kubernetes_service_ip, "kubernetes",
             "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{config.cluster_domain}")
    node_user = f"system:node:{config.node_name}"
    return {
        "apiserver": ca.issue("apiserver", "kube-apiserver", server=True, hosts=hosts),
        "apiserver-kubelet-client": ca.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                             organizations=("system:masters",), client=True),
        "admin": ca.issue("admin", ADMIN[0], organizations=ADMIN[1], client=True),
        "controller-manager": ca.issue("controller-manager", "system:kube-controller-manager", client=True),
        "scheduler": ca.issue("scheduler", "system:kube-scheduler", client=True),
        "kube-proxy": ca.issue("kube-proxy", "system:kube-proxy", client=True),
        "kubelet": ca.issue("kubelet", node_user, organizations=("system:nodes",), client=True),
        "kubelet-serving": ca.issue("kubelet-serving", node_user, organizations=("system:nodes",), server=True,
                                    hosts=(config.node_name, config.node_ip, "127.0.0.1")),
        "service-account": ca.signing_key("service-account"),
    }


def write_kubeconfig(config: ClusterConfig, path: Path, user: str, pair: KeyPair) -> Path:
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": "melancia-local", "preferences": {},
        "clusters": [{"name": "melancia-local", "cluster": {
            "server": config.server, "certificate-authority": str(config.pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}],
        "contexts": [{"name": "melancia-local", "context": {"cluster": "melancia-local", "user": user,
                                                            "namespace": "default"}}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


# -- control plane ----------------------------------------------------------------------------------


def etcd_argv(config: ClusterConfig) -> list[str]:
    client, peer = f"http://127.0.0.1:{config.etcd_port}", f"http://127.0.0.1:{config.etcd_port + 1}"
    return [str(config.k8s_bin / "etcd"), "--name=melancia", f"--data-dir={config.run / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=melancia={peer}", "--unsafe-no-fsync", "--log-level=warn"]


def apiserver_argv(config: ClusterConfig, pki: dict[str, KeyPair]) -> list[str]:
    return [
        str(config.k8s_bin / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{config.etcd_port}",
        f"--bind-address={config.node_ip}", f"--advertise-address={config.node_ip}",
        f"--secure-port={config.apiserver_port}", f"--cert-dir={config.run / 'apiserver-certs'}",
        f"--tls-cert-file={pki['apiserver'].cert}", f"--tls-private-key-file={pki['apiserver'].key}",
        f"--client-ca-file={config.pki / 'ca.crt'}",
        f"--kubelet-client-certificate={pki['apiserver-kubelet-client'].cert}",
        f"--kubelet-client-key={pki['apiserver-kubelet-client'].key}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer=https://kubernetes.default.svc.{config.cluster_domain}",
        f"--service-account-key-file={pki['service-account'].cert}",
        f"--service-account-signing-key-file={pki['service-account'].key}",
        f"--service-cluster-ip-range={config.service_cidr}",
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        # Webhook calls (KServe's) go straight to the endpoints: the API server is not a pod.
        "--enable-aggregator-routing=true",
    ]


def controller_manager_argv(config: ClusterConfig, pki: dict[str, KeyPair], kubeconfig: Path) -> list[str]:
    return [
        str(config.k8s_bin / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10257",
        f"--cert-dir={config.run / 'controller-manager-certs'}",
        f"--service-account-private-key-file={pki['service-account'].key}", f"--root-ca-file={config.pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={config.pki / 'ca.crt'}", f"--cluster-signing-key-file={config.pki / 'ca.key'}",
        f"--service-cluster-ip-range={config.service_cidr}", "--use-service-account-credentials=true",
        "--controllers=*", "--allocate-node-cidrs=false",
    ]


def scheduler_argv(config: ClusterConfig, kubeconfig: Path) -> list[str]:
    return [str(config.k8s_bin / "kube-scheduler"), f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10259",
            f"--cert-dir={config.run / 'scheduler-certs'}"]


def kwok_argv(config: ClusterConfig, kubeconfig: Path) -> list[str]:
    from localcluster.config import REPO

    return [str(config.k8s_bin / "kwok"), f"--config={REPO / 'scripts/kwok-stages.yaml'}",
            f"--kubeconfig={kubeconfig}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={config.fake_pod_cidr}", "--node-ip=10.1.0.1", "--server-address=127.0.0.1:10247"]


# -- images: registry and Docker ---------------------------------------------------------------------


def registry_argv(config: ClusterConfig) -> list[str]:
    path = config.run / "registry.yml"
    path.write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(config.cache / "registry")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{config.registry_port}"},
    }))
    return [find_program("docker-registry", "/usr/bin/docker-registry"), "serve", str(path)]


def dockerd_argv(config: ClusterConfig) -> list[str]:
    """A private Docker engine for image builds: its own socket, no bridge and no iptables rules (builds
    use the host network), its layers kept in the cache for the next build."""
    exec_root = config.run / "docker"
    exec_root.mkdir(parents=True, exist_ok=True)
    return [find_program("dockerd", "/usr/bin/dockerd"), f"--host=unix://{config.docker_socket}",
            f"--data-root={config.cache / 'docker'}", f"--exec-root={exec_root / 'exec'}",
            f"--pidfile={exec_root / 'dockerd.pid'}", "--bridge=none", "--iptables=false", "--ip-masq=false",
            "--storage-driver=overlay2", "--log-level=warn"]


# -- the node ---------------------------------------------------------------------------------------


def pause_image(config: ClusterConfig) -> str:
    return f"{config.registry}/melancia/pause:{(config.bin / 'pause.tag').read_text().strip()}"


def containerd_argv(config: ClusterConfig) -> list[str]:
    state = config.run / "containerd"
    hosts = state / "certs.d" / config.registry
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts.toml").write_text(
        f'server = "http://{config.registry}"\n\n[host."http://{config.registry}"]\n'
        '  capabilities = ["pull", "resolve"]\n')
    cni = config.run / "cni"
    toml = f"""version = 2
root = "{config.cache / 'containerd'}"
state = "{state / 'state'}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{config.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image(config)}"
  # This machine refuses to lower oom_score_adj: without this runc fails to start containers.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni / 'net.d'}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{state / 'certs.d'}"
"""
    path = state / "config.toml"
    path.write_text(toml)
    return [find_program("containerd", "/usr/bin/containerd"), f"--config={path}", "--log-level=warn"]


def write_cni(config: ClusterConfig) -> None:
    net_d = config.run / "cni" / "net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    conflist = {
        "cniVersion": "1.0.0", "name": "melancia",
        "plugins": [
            {"type": "bridge", "bridge": config.bridge, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "mtu": config.mtu,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": config.pod_subnet}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(config.run / "cni" / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (net_d / "10-melancia.conflist").write_text(json.dumps(conflist, indent=2))


def kubelet_argv(config: ClusterConfig, pki: dict[str, KeyPair], kubeconfig: Path) -> list[str]:
    kubelet_config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        # cgroup v1 hosts: kubelet 1.35+ refuses them unless told otherwise.
        "failCgroupV1": False, "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{config.containerd_socket}",
        "address": config.node_ip, "port": 10250, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
        "tlsCertFile": str(pki["kubelet-serving"].cert), "tlsPrivateKeyFile": str(pki["kubelet-serving"].key),
        "authentication": {"x509": {"clientCAFile": str(config.pki / "ca.crt")}, "webhook": {"enabled": True},
                           "anonymous": {"enabled": False}},
        "authorization": {"mode": "Webhook"},
        "clusterDomain": config.cluster_domain, "clusterDNS": [config.dns_service_ip],
        "resolvConf": "/etc/resolv.conf", "failSwapOn": False,
        "podLogsDir": str(config.run / "pod-logs"),
        # No disk-based eviction and no image garbage collection, as kind configures its nodes: the node's
        # disk is the developer's (or CI's) disk, usually shared, so a percentage of its size says nothing
        # about room left for pods, and at 5% of a 250 GB disk the kubelet evicted every pod with GBs free.
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "0%", "nodefs.inodesFree": "0%",
                         "imagefs.available": "0%"},
        "imageGCHighThresholdPercent": 100,
        "serializeImagePulls": False, "protectKernelDefaults": False, "maxPods": 110,
    }
    path = config.run / "kubelet-config.yaml"
    path.write_text(yaml.safe_dump(kubelet_config, sort_keys=False))
    return [str(config.k8s_bin / "kubelet"), f"--config={path}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={config.run / 'kubelet'}", f"--hostname-override={config.node_name}",
            f"--node-ip={config.node_ip}", "--node-labels=melancia.io/node=real", "--v=1"]


def kube_proxy_argv(config: ClusterConfig, kubeconfig: Path) -> list[str]:
    proxy_config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)}, "mode": "iptables",
        "hostnameOverride": config.node_name, "clusterCIDR": config.pod_subnet,
        "metricsBindAddress": "127.0.0.1:10249", "healthzBindAddress": "127.0.0.1:10256",
        # Leave the host's sysctls as they are: no conntrack table resizing, no route_localnet.
        "conntrack": {"maxPerCore": 0},
        "iptables": {"localhostNodePorts": False},
    }
    path = config.run / "kube-proxy-config.yaml"
    path.write_text(yaml.safe_dump(proxy_config, sort_keys=False))
    return [str(config.k8s_bin / "kube-proxy"), f"--config={path}"]


def kube_proxy_cleanup_argv(config: ClusterConfig) -> list[str]:
    return [str(config.k8s_bin / "kube-proxy"), "--cleanup"]
