"""Images for the local cluster, built with the cluster's Docker engine and pushed to its registry.

No image registry is reachable from these machines, so every image starts here:
- the base: Debian bookworm with Python 3.11, made by ``debootstrap`` and imported into Docker;
- the cluster's own images (``images/cluster.Dockerfile``): the pause sandbox, CoreDNS, KServe's
  controller and the local-path provisioner, each ``FROM scratch`` around a binary built by
  ``scripts/cluster-binaries.sh``;
- the project's images (``images/Dockerfile``, one target each), built ``FROM`` the base.

Builds run on the host network (the engine has no bridge). Inside a build the package registries are
reached with the machine's CA bundle, passed as the BuildKit secret ``ca`` and never written to a layer.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from localcluster.config import REPO, ClusterConfig
from localcluster.host import ctr
from localcluster.processes import ClusterError, run

DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3.11", "ca-certificates", "libgomp1")
CLUSTER_IMAGES = ("pause", "coredns", "kserve-controller", "local-path-provisioner")
PROJECT_IMAGES = ("operator", "api", "predictor", "trainer-cpu", "mlflow", "chromadb")


@dataclass(frozen=True)
class Built:
    image: str
    seconds: float
    size_bytes: int
    pushed: bool


def docker(config: ClusterConfig) -> list[str]:
    # Debian's client (20.10) builds with BuildKit itself; a newer client found first on PATH needs buildx.
    return [shutil.which("docker", path="/usr/bin") or "docker", "--host", f"unix://{config.docker_socket}"]


def docker_env() -> dict[str, str]:
    return {"DOCKER_BUILDKIT": "1"}


def ca_bundle() -> Path | None:
    """The CA bundle the machine trusts (``SSL_CERT_FILE``), for builds that reach the registries."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.oci.image.index.v1+json")


def registry_digest(config: ClusterConfig, image: str) -> str | None:
    """The digest the registry gives ``<registry>/<name>:<tag>`` now, or None when it has no such tag."""
    name, tag = image.removeprefix(f"{config.registry}/").rsplit(":", 1)
    request = urllib.request.Request(f"http://127.0.0.1:{config.registry_port}/v2/{name}/manifests/{tag}",
                                     method="HEAD", headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def in_registry(config: ClusterConfig, image: str) -> bool:
    return registry_digest(config, image) is not None


def stale_node_images(config: ClusterConfig, node_images: list[tuple[str, str]]) -> list[str]:
    """References among the node's ``(reference, digest)`` images of this registry's project images whose
    tag the registry now gives to another build (or, for ``name@digest`` references, that no tag has)."""
    current: dict[str, str | None] = {}
    for ref, _ in node_images:
        if "@" not in ref and ref.startswith(f"{config.registry}/melancia/"):
            current[ref] = registry_digest(config, ref)
    live = {(ref.rsplit(":", 1)[0], digest) for ref, digest in current.items() if digest}
    stale = []
    for ref, digest in node_images:
        if not ref.startswith(f"{config.registry}/melancia/"):
            continue
        if "@" in ref:
            if (ref.split("@", 1)[0], digest) not in live:
                stale.append(ref)
        elif current.get(ref) not in (None, digest):
            stale.append(ref)
    return stale


def image_size(config: ClusterConfig, image: str) -> int:
    out = run([*docker(config), "image", "inspect", "--format", "{{.Size}}", image]).stdout.strip()
    return int(out or 0)


def base_image(config: ClusterConfig) -> str:
    """Debian bookworm + Python 3.11 from debootstrap, in Docker and in the registry (once per cache)."""
    image = config.image("base", "bookworm-py3.11")
    if run([*docker(config), "image", "inspect", image], check=False).returncode == 0:
        if not in_registry(config, image):
            run([*docker(config), "push", image], timeout_s=600)
        return image
    if os.geteuid() != 0:
        raise ClusterError("debootstrap needs root to build the base image")
    debootstrap = shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin")
    if not debootstrap:
        raise ClusterError("debootstrap not found (Debian: apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="melancia-base-") as root:
        print(f"base image: debootstrap bookworm ({', '.join(BASE_PACKAGES)})", flush=True)
        run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm", root,
             DEBIAN_MIRROR], timeout_s=1800)
        shutil.rmtree(Path(root) / "var/cache/apt/archives", ignore_errors=True)
        (Path(root) / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        run(["bash", "-c", f"tar -C {root} -c . | {' '.join(docker(config))} import "
                   f"--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "
                   f"--change 'CMD [\"/bin/bash\"]' - {image}"], timeout_s=900)
    run([*docker(config), "push", image], timeout_s=600)
    return image


def build(config: ClusterConfig, dockerfile: Path, target: str, image: str, context: Path,
          build_args: dict[str, str] | None = None, push: bool = True) -> Built:
    """``docker build --target`` on the host network with the CA secret, then ``docker push``."""
    argv = [*docker(config), "build", "--network", "host", "-f", str(dockerfile), "--target", target, "-t", image]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    if (bundle := ca_bundle()) is not None:
        argv += ["--secret", f"id=ca,src={bundle}"]
    started = time.monotonic()
    print(f"image {image}: docker build --target {target}", flush=True)
    result = run([*argv, str(context)], env=docker_env(), check=False, timeout_s=3600)
    if result.returncode != 0:
        raise ClusterError(f"docker build --target {target} failed ({result.returncode}):\n"
                           f"{(result.stdout + result.stderr)[-6000:]}")
    seconds = time.monotonic() - started
    if push:
        run([*docker(config), "push", image], timeout_s=1800)
    return Built(image, seconds, image_size(config, image), push)


def cluster_images(config: ClusterConfig) -> list[str]:
    """The cluster's own images, built only when the registry lacks them."""
    tags = {"pause": (config.bin / "pause.tag").read_text().strip(), "coredns": config.versions["COREDNS_VERSION"],
            "kserve-controller": config.versions["KSERVE_VERSION"],
            "local-path-provisioner": config.versions["LOCAL_PATH_PROVISIONER_VERSION"]}
    images = []
    for name in CLUSTER_IMAGES:
        image = config.image(name, tags[name])
        if not in_registry(config, image):
            build(config, REPO / "images" / "cluster.Dockerfile", name, image, config.bin)
        images.append(image)
    return images


def project_images(config: ClusterConfig, tag: str, names: tuple[str, ...] = PROJECT_IMAGES) -> list[Built]:
    """The project's images from ``images/Dockerfile`` on the debootstrap base, pushed as ``<registry>/melancia/<name>:<tag>``."""
    base = base_image(config)
    built = []
    for name in names:
        built.append(build(config, REPO / "images" / "Dockerfile", name, config.image(name, tag), REPO,
                           build_args={"BASE": base}))
        print(f"image {built[-1].image}: {built[-1].seconds:.0f} s, {built[-1].size_bytes / 1e9:.2f} GB", flush=True)
    reclaim_build_space(config)
    return built


def reclaim_build_space(config: ClusterConfig) -> None:
    """Drop what only a build with other dependencies would reuse: the downloads in the uv cache mount
    (several GB of wheels, torch's CUDA libraries among them) and images a newer build of the same tag
    replaced. The layers stay, so a rebuild after a code change still starts from cache."""
    run([*docker(config), "builder", "prune", "--force", "--filter", "type=exec.cachemount"], timeout_s=600)
    run([*docker(config), "image", "prune", "--force"], timeout_s=600)
    prune_node_images(config)


def prune_node_images(config: ClusterConfig) -> None:
    """The node's copies (containerd) of builds the registry has replaced: the kubelet's image GC is off
    (percentages of a shared disk), so without this every rebuild of the torch layers kept 6 GB more."""
    listing = run([*ctr(config), "images", "ls"], check=False)
    if listing.returncode != 0:
        return  # containerd is not running: nothing to prune now
    rows = [line.split() for line in listing.stdout.splitlines()[1:] if line.strip()]
    stale = stale_node_images(config, [(row[0], row[2]) for row in rows if len(row) >= 3])
    if stale:
        run([*ctr(config), "images", "rm", "--sync", *stale], check=False, timeout_s=600)


def write_build_report(path: Path, built: list[Built]) -> None:
    path.write_text(json.dumps([b.__dict__ for b in built], indent=2))
