"""What runs inside the local cluster once its node is up: CoreDNS, the local-path storage provisioner
(the default StorageClass, as on kind), kwok's fake GPU node, and KServe's controller in RawDeployment
mode with its webhooks.

Each comes from its project's own install files at the pinned version (``scripts/cluster-binaries.sh``
copies them into the cache), changed only where this cluster differs: images from the local registry,
and for KServe no cert-manager (the webhook certificate is issued by the cluster's CA, and its bundle
written into the webhook configurations) and no kube-rbac-proxy sidecar.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml

from localcluster.config import ClusterConfig
from localcluster.pki import CertificateAuthority
from localcluster.processes import run

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
KSERVE_NAMESPACE = "kserve"
KSERVE_WEBHOOK_SERVICE = "kserve-webhook-server-service"
KSERVE_WEBHOOK_SECRET = "kserve-webhook-server-cert"
# Kinds that only cert-manager understands; this cluster issues the webhook certificate itself.
CERT_MANAGER_KINDS = {"Certificate", "Issuer", "ClusterIssuer"}


def kubectl(config: ClusterConfig) -> list[str]:
    return [str(config.helm_bin / "kubectl"), f"--kubeconfig={config.kubeconfig}"]


def apply(config: ClusterConfig, documents: list[dict[str, Any]], *, server_side: bool = False) -> None:
    argv = [*kubectl(config), "apply", "-f", "-"]
    if server_side:
        argv[-2:-2] = ["--server-side", "--force-conflicts"]
    run(argv, input_text=yaml.safe_dump_all(documents, sort_keys=False), timeout_s=300)


def coredns(config: ClusterConfig) -> list[dict[str, Any]]:
    """Kubernetes' CoreDNS addon (cluster/addons/dns/coredns/coredns.yaml.base) with this cluster's values."""
    text = (config.cache / "addons" / "coredns.yaml.base").read_text()
    text = (text.replace("__DNS__DOMAIN__", config.cluster_domain)
            .replace("__DNS__SERVER__", config.dns_service_ip)
            .replace("__DNS__MEMORY__LIMIT__", "170Mi"))
    documents = [d for d in yaml.safe_load_all(text) if d]
    for document in documents:
        if document["kind"] == "Deployment":
            document["spec"]["replicas"] = 1
            for container in document["spec"]["template"]["spec"]["containers"]:
                container["image"] = config.image("coredns", config.versions["COREDNS_VERSION"])
                container["imagePullPolicy"] = "IfNotPresent"
    return documents


def local_path_storage(config: ClusterConfig, base_image: str) -> list[dict[str, Any]]:
    """rancher/local-path-provisioner's manifest: volumes in the run folder, the default StorageClass."""
    documents = [d for d in yaml.safe_load_all((config.cache / "addons" / "local-path-storage.yaml").read_text()) if d]
    volumes = config.run / "volumes"
    volumes.mkdir(parents=True, exist_ok=True)
    for document in documents:
        if document["kind"] == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                container["image"] = config.image("local-path-provisioner",
                                                  config.versions["LOCAL_PATH_PROVISIONER_VERSION"])
        elif document["kind"] == "StorageClass":
            document["metadata"].setdefault("annotations", {})["storageclass.kubernetes.io/is-default-class"] = "true"
        elif document["kind"] == "ConfigMap":
            data = document["data"]
            data["config.json"] = json.dumps({"nodePathMap": [
                {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(volumes)]}]})
            helper = yaml.safe_load(data["helperPod.yaml"])
            helper["spec"]["containers"][0]["image"] = base_image
            data["helperPod.yaml"] = yaml.safe_dump(helper, sort_keys=False)
    return documents


def gpu_node(config: ClusterConfig) -> dict[str, Any]:
    """kwok's fake node with one ``nvidia.com/gpu``: the real scheduler places GPU Jobs on it, and kwok
    plays their kubelet."""
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "1"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": config.gpu_node_name, "annotations": KWOK_ANNOTATION,
                     "labels": {"kubernetes.io/hostname": config.gpu_node_name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "type": "kwok", "nvidia.com/gpu.present": "true"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def kserve(config: ClusterConfig) -> list[dict[str, Any]]:
    """KServe's config/default and config/configmap (kustomize, as its Makefile renders them), made to run
    without cert-manager, with RawDeployment as the default mode and no Ingress objects."""
    root = config.cache / "kserve" / "config"
    documents = []
    for part in ("default", "configmap"):
        rendered = run([*kubectl(config), "kustomize", str(root / part)], timeout_s=120).stdout
        documents += [d for d in yaml.safe_load_all(rendered) if d]
    documents = [d for d in documents if d["kind"] not in CERT_MANAGER_KINDS]
    if not any(d["kind"] == "Namespace" for d in documents):  # kustomize sets it on objects, never creates it
        documents.insert(0, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KSERVE_NAMESPACE}})
    ca = CertificateAuthority(config.pki)
    host = f"{KSERVE_WEBHOOK_SERVICE}.{KSERVE_NAMESPACE}.svc"
    pair = ca.issue("kserve-webhook", host, server=True, hosts=(host, f"{host}.{config.cluster_domain}"))
    bundle = base64.b64encode(ca.pem).decode()
    for document in documents:
        kind = document["kind"]
        if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for webhook in document["webhooks"]:
                webhook["clientConfig"]["caBundle"] = bundle
            document["metadata"].get("annotations", {}).pop("cert-manager.io/inject-ca-from", None)
        elif kind == "Deployment":
            _kserve_controller(config, document)
        elif kind == "ConfigMap" and document["metadata"]["name"] == "inferenceservice-config":
            _kserve_settings(document)
        elif kind == "CustomResourceDefinition":
            document["metadata"].get("annotations", {}).pop("cert-manager.io/inject-ca-from", None)
    documents.append({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": KSERVE_WEBHOOK_SECRET, "namespace": KSERVE_NAMESPACE},
        "data": {"tls.crt": _b64(pair.cert), "tls.key": _b64(pair.key), "ca.crt": bundle},
    })
    return documents


def _kserve_controller(config: ClusterConfig, deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"] = [c for c in pod["containers"] if c["name"] == "manager"]  # no kube-rbac-proxy image here
    manager = pod["containers"][0]
    manager["image"] = config.image("kserve-controller", config.versions["KSERVE_VERSION"])
    manager["imagePullPolicy"] = "IfNotPresent"
    manager["args"] = [a for a in manager.get("args", []) if a != "--leader-elect"]
    for probe in ("readinessProbe", "livenessProbe"):
        manager.get(probe, {})["initialDelaySeconds"] = 5


def _kserve_settings(configmap: dict[str, Any]) -> None:
    data = configmap["data"]
    data["deploy"] = json.dumps({"defaultDeploymentMode": "RawDeployment"})
    ingress = json.loads(data["ingress"])
    ingress["disableIngressCreation"] = True
    data["ingress"] = json.dumps(ingress)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
