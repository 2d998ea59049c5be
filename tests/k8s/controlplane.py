"""A real Kubernetes control plane for tests: etcd + kube-apiserver, optionally kube-scheduler,
kube-controller-manager and kwok (fake nodes), as local processes.

The binaries come from ``scripts/k8s-binaries.sh`` (built once into ``~/.cache/melancia/k8s/bin``). The API server
is started with the flag set controller-runtime's envtest uses: etcd servers, serving certificate, secure
port on 127.0.0.1, service-account issuer and keys, service cluster IP range, RBAC. Clients authenticate
as ``admin`` in group ``system:masters``: with a client certificate (the kubeconfig) or a bearer token
(``ControlPlane.token``, for plain HTTP clients).

Usage::

    with ControlPlane(bin_dir, work_dir) as cp:      # etcd + kube-apiserver, /readyz answered
        client = cp.api_client()                      # kubernetes.client.ApiClient
        cp.start_scheduling()                         # optional: scheduler, controller-manager, kwok
"""

from __future__ import annotations

import ctypes
import datetime as dt
import ipaddress
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"
# Nodes kwok manages carry this annotation (kwok's own convention); other nodes are left alone.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu.present"

REQUIRED_BINARIES = ("etcd", "kube-apiserver")
KWOK_STAGES = Path(__file__).resolve().parents[2] / "scripts" / "kwok-stages.yaml"
SCHEDULING_BINARIES = ("kube-scheduler", "kube-controller-manager", "kwok")


class ControlPlaneError(RuntimeError):
    """A component did not start, or exited."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_binaries(bin_dir: Path, names: tuple[str, ...] = REQUIRED_BINARIES) -> list[str]:
    return [name for name in names if not os.access(bin_dir / name, os.X_OK)]


def _die_with_parent() -> None:
    """In the child before exec: be killed if the test process dies without stopping it (SIGKILL: on
    SIGTERM alone, kube-apiserver waits for the etcd that died beside it)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    client_cert: Path
    client_key: Path
    sa_public_key: Path
    sa_private_key: Path


def _write_key(path: Path, key: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def make_pki(directory: Path) -> Pki:
    """A self-signed CA, a serving certificate for the API server, an admin client certificate
    (O=system:masters) and the service-account signing key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)

    def name(common_name: str, organization: str | None = None) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        return x509.Name(attributes)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("melancia-test-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    ips = ["127.0.0.1", KUBERNETES_SERVICE_IP]
    serving_key, serving = leaf(name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
                                [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
    client_key, client = leaf(name(ADMIN_USER, ADMIN_GROUP), ExtendedKeyUsageOID.CLIENT_AUTH, None)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pem = serialization.Encoding.PEM
    pki = Pki(ca_cert=directory / "ca.crt", serving_cert=directory / "apiserver.crt",
              serving_key=directory / "apiserver.key", client_cert=directory / "admin.crt",
              client_key=directory / "admin.key", sa_public_key=directory / "sa.pub",
              sa_private_key=directory / "sa.key")
    pki.ca_cert.write_bytes(ca.public_bytes(pem))
    pki.serving_cert.write_bytes(serving.public_bytes(pem) + ca.public_bytes(pem))
    _write_key(pki.serving_key, serving_key)
    pki.client_cert.write_bytes(client.public_bytes(pem))
    _write_key(pki.client_key, client_key)
    pki.sa_public_key.write_bytes(sa_key.public_key().public_bytes(
        pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    _write_key(pki.sa_private_key, sa_key)
    return pki


# ---------------------------------------------------------------------------------------------------
# Processes


@dataclass
class Component:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ControlPlaneError(f"{self.name} exited with {self.process.returncode}; "
                                    f"last lines of {self.log}:\n{self.tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()


@dataclass
class ControlPlane:
    """etcd + kube-apiserver on free ports of 127.0.0.1, with state under ``work_dir``."""

    bin_dir: Path
    work_dir: Path
    start_timeout_s: float = 180.0
    components: list[Component] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    etcd_url: str = ""
    server: str = ""
    kubeconfig: Path = field(init=False)
    pki: Pki | None = None
    client: Any = None  # the fixtures set a ready kubernetes.client.ApiClient here

    def __post_init__(self) -> None:
        self.bin_dir = Path(self.bin_dir).resolve()
        self.work_dir = Path(self.work_dir).resolve()
        self.kubeconfig = self.work_dir / "kubeconfig"
        self.logs = self.work_dir / "logs"

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise ControlPlaneError(f"missing {', '.join(missing)} in {self.bin_dir}: run scripts/k8s-binaries.sh")
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.pki = make_pki(self.work_dir / "pki")
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every component, newest first (SIGTERM to its process group, SIGKILL after 15 s)."""
        while self.components:
            self.components.pop().stop()

    def running(self, name: str) -> bool:
        return any(c.name == name and c.process.poll() is None for c in self.components)

    def _spawn(self, name: str, argv: list[str]) -> Component:
        log = self.logs / f"{name}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                       cwd=self.work_dir, start_new_session=True,
                                       preexec_fn=_die_with_parent)  # noqa: PLW1509
        component = Component(name, process, log)
        self.components.append(component)
        return component

    def _wait(self, component: Component, ready: Any, what: str, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        last_error = ""
        while time.monotonic() < deadline:
            component.check_alive()
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError) as error:
                last_error = str(error)
            time.sleep(0.25)
        component.stop()
        raise ControlPlaneError(f"{component.name}: {what} not ready after {timeout_s or self.start_timeout_s} s "
                                f"({last_error}); last lines of {component.log}:\n{component.tail()}")

    # -- etcd -----------------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        for attempt in range(3):  # a free port can be taken between probing and binding: retry
            client, peer = free_port(), free_port()
            self.etcd_url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            etcd = self._spawn("etcd", [
                str(self.bin_dir / "etcd"), "--name=test", f"--data-dir={self.work_dir / f'etcd-{attempt}'}",
                f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=test={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
            ])
            try:
                self._wait(etcd, lambda: _http_ok(f"{self.etcd_url}/health"), "/health", 60)
                return
            except ControlPlaneError:
                if attempt == 2 or "address already in use" not in etcd.tail():
                    raise
                self.components.remove(etcd)

    # -- kube-apiserver -------------------------------------------------------------------------------

    def _start_apiserver(self) -> None:
        assert self.pki is not None
        token_file = self.work_dir / "tokens.csv"
        token_file.write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n')
        token_file.chmod(0o600)
        for attempt in range(3):
            port = free_port()
            self.server = f"https://127.0.0.1:{port}"
            apiserver = self._spawn("kube-apiserver", [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
                f"--cert-dir={self.work_dir / 'apiserver-certs'}",
                f"--tls-cert-file={self.pki.serving_cert}", f"--tls-private-key-file={self.pki.serving_key}",
                f"--client-ca-file={self.pki.ca_cert}", f"--token-auth-file={token_file}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={self.pki.sa_public_key}",
                f"--service-account-signing-key-file={self.pki.sa_private_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC", "--allow-privileged=true",
                # Since 1.3x a loopback advertise address is refused by the endpoint reconciler of the
                # `kubernetes` Service; nothing here reaches the API server through that Service.
                "--endpoint-reconciler-type=none",
                # As envtest: pods do not need their ServiceAccount to exist (no token controller is
                # required for Jobs/pods to be created).
                "--disable-admission-plugins=ServiceAccount",
            ])
            try:
                self._wait(apiserver, self._apiserver_ready, "/readyz")
                break
            except ControlPlaneError:
                if attempt == 2 or "address already in use" not in apiserver.tail():
                    raise
                self.components.remove(apiserver)
        self._write_kubeconfig()

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        return ssl.create_default_context(cafile=str(self.pki.ca_cert))

    def _apiserver_ready(self) -> bool:
        return _http_ok(f"{self.server}/readyz", context=self._ssl_context(),
                        headers={"Authorization": f"Bearer {self.token}"})

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "melancia-test", "preferences": {},
            "clusters": [{"name": "melancia-test", "cluster": {
                "server": self.server, "certificate-authority": str(self.pki.ca_cert)}}],
            "users": [{"name": ADMIN_USER, "user": {
                "client-certificate": str(self.pki.client_cert), "client-key": str(self.pki.client_key)}}],
            "contexts": [{"name": "melancia-test", "context": {"cluster": "melancia-test", "user": ADMIN_USER}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def api_client(self):
        """A new ``kubernetes.client.ApiClient`` for the admin user (close it when done)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    # -- optional components --------------------------------------------------------------------------

    def _secure_healthz(self, component: Component, port: int) -> None:
        # The components serve /healthz on a self-signed certificate; it is always allowed.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._wait(component, lambda: _http_ok(f"https://127.0.0.1:{port}/healthz", context=context), "/healthz", 90)

    def start_scheduler(self) -> None:
        if self.running("kube-scheduler"):
            return
        port = free_port()
        scheduler = self._spawn("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.work_dir / 'scheduler-certs'}",
        ])
        self._secure_healthz(scheduler, port)

    def start_controller_manager(self) -> None:
        if self.running("kube-controller-manager"):
            return
        assert self.pki is not None
        port = free_port()
        manager = self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.work_dir / 'controller-manager-certs'}",
            f"--service-account-private-key-file={self.pki.sa_private_key}", f"--root-ca-file={self.pki.ca_cert}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}", "--use-service-account-credentials=false",
        ])
        self._secure_healthz(manager, port)

    def start_kwok(self) -> None:
        """kwok managing the nodes annotated ``kwok.x-k8s.io/node=fake`` (see :meth:`add_fake_node`)."""
        if self.running("kwok"):
            return
        stages = KWOK_STAGES
        port = free_port()
        kwok = self._spawn("kwok", [
            str(self.bin_dir / "kwok"), f"--config={stages}", f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION[0]}={KWOK_NODE_ANNOTATION[1]}",
            "--cidr=10.244.0.1/16", "--node-ip=10.1.0.1", f"--server-address=127.0.0.1:{port}",
        ])
        self._wait(kwok, lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), "/healthz", 90)

    def start_scheduling(self, nodes: bool = True) -> None:
        """kube-scheduler, kube-controller-manager and kwok; with ``nodes``, the two fake nodes
        ``gpu-node`` (1 ``nvidia.com/gpu``, label ``nvidia.com/gpu.present=true``) and ``cpu-node``."""
        missing = missing_binaries(self.bin_dir, SCHEDULING_BINARIES)
        if missing:
            raise ControlPlaneError(f"missing {', '.join(missing)} in {self.bin_dir}: run scripts/k8s-binaries.sh")
        self.start_kwok()
        self.start_scheduler()
        self.start_controller_manager()
        if nodes:
            self.add_fake_node("gpu-node", gpus=1)
            self.add_fake_node("cpu-node")
            self.wait_nodes_ready(["gpu-node", "cpu-node"])

    def add_fake_node(self, name: str, *, cpu: str = "8", memory: str = "32Gi", gpus: int = 0,
                      labels: dict[str, str] | None = None) -> None:
        """A Node object kwok keeps Ready; ``gpus`` > 0 adds ``nvidia.com/gpu`` capacity and the GPU label."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        capacity = {"cpu": cpu, "memory": memory, "pods": "110"}
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", **(labels or {})}
        if gpus:
            capacity[GPU_RESOURCE] = str(gpus)
            node_labels[GPU_LABEL] = "true"
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels,
                         "annotations": {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1]}},
            "status": {"capacity": capacity, "allocatable": capacity},
        }
        with self.api_client() as api:
            try:
                client.CoreV1Api(api).create_node(body)
            except ApiException as error:
                if error.status != 409:
                    raise

    def wait_nodes_ready(self, names: list[str], timeout_s: float = 60.0) -> None:
        from kubernetes import client

        deadline = time.monotonic() + timeout_s
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            while True:
                ready = {n.metadata.name for n in core.list_node().items
                         if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))}
                if set(names) <= ready:
                    return
                if time.monotonic() > deadline:
                    kwok = next((c for c in self.components if c.name == "kwok"), None)
                    raise ControlPlaneError(f"nodes {sorted(set(names) - ready)} not Ready after {timeout_s} s"
                                            + (f"; kwok log:\n{kwok.tail()}" if kwok else ""))
                time.sleep(0.25)


def _http_ok(url: str, *, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=3, context=context) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False
