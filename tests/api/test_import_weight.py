"""Importing the gateway loads no model runtime: it runs in an image and a process without them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("kserve", "torch", "llama_cpp")


def _loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_gateway_and_its_app_loads_no_kserve_torch_or_llama_cpp():
    assert _loaded_after("import melancia.api\nfrom melancia.api.app import create_app") == []


def test_importing_the_serving_package_loads_no_kserve():
    assert _loaded_after("import melancia.serving\nimport melancia.serving.routes") == []


def test_the_check_sees_a_heavy_import():
    assert "kserve" in _loaded_after("import melancia.serving.predictor")
