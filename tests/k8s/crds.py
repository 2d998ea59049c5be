"""Installing CustomResourceDefinitions into the test control plane and waiting until they serve."""

from __future__ import annotations

import time
from pathlib import Path

import yaml


def install_crd(api_client, path: Path, timeout_s: float = 60.0) -> str:
    """Create the CRD of ``path`` (an existing one is kept) and wait for Established; returns its name."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    extensions = client.ApiextensionsV1Api(api_client)
    body = yaml.safe_load(Path(path).read_text())
    body.pop("status", None)
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
    name = body["metadata"]["name"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return name
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not Established after {timeout_s} s")
