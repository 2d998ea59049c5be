"""The package's layers: each package of ``melancia`` imports only packages of lower layers.

The order has one home, the README's module map; this test reads it from there, walks every import of
every module (function-local ones included) and fails on an import that reaches up or sideways, which
also rules out import cycles between packages. It also checks that the map names every package and
module of the tree and that no module grows past 400 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "melancia"
LAYER_LINE = re.compile(r"^(\d+)\. ((?:`[a-z_]+(?:\.py)?/?`(?:, )?)+)")
MAX_MODULE_LINES = 400


def readme_layers() -> dict[str, int]:
    """``{package: layer}`` from the numbered list under the README's "Module map" heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        match = LAYER_LINE.match(line)
        if match:
            for name in re.findall(r"`([a-z_]+)(?:\.py)?/?`", match[2]):
                layers[name] = int(match[1])
    return layers


def top_level_names() -> set[str]:
    return {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}


def package_of(module: Path) -> str:
    return module.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_packages(module: Path) -> set[tuple[str, int]]:
    """The ``melancia`` packages a module imports, with the line of each import."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "melancia" else [
                f"melancia.{a.name}" for a in node.names if a.name in top_level_names()]  # not __version__
        found |= {(name.split(".")[1], node.lineno) for name in names if name.startswith("melancia.")}
    return found


def test_the_module_map_names_every_package_once():
    assert set(readme_layers()) == top_level_names()


def test_no_package_imports_one_of_its_own_layer_or_above():
    layers = readme_layers()
    wrong = []
    for module in sorted(PACKAGE.rglob("*.py")):
        source = package_of(module)
        for target, line in sorted(imported_packages(module)):
            if target != source and layers[target] >= layers[source]:
                wrong.append(f"{module.relative_to(REPO)}:{line}: {source} (layer {layers[source]}) imports "
                             f"{target} (layer {layers[target]})")
    assert not wrong, "\n".join(wrong)


def test_modules_stay_small_enough_to_hold_in_the_head():
    sizes = {module.relative_to(REPO): len(module.read_text(encoding="utf-8").splitlines())
             for module in PACKAGE.rglob("*.py")}
    too_long = {str(module): lines for module, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"split these by concern (over {MAX_MODULE_LINES} lines): {too_long}"


def test_a_reaching_up_import_is_caught(tmp_path: Path):
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from melancia.api.app import create_app\n    import melancia.router.router\n")
    assert imported_packages(module) == {("api", 2), ("router", 3)}
