"""The typed YAML loader behind every config: a YAML file plus ``key=value`` overrides -> a dataclass.

A config is a plain dataclass whose fields are documented in place and checked in ``__post_init__``
with :func:`check`. :func:`load_config` reads a YAML file, applies overrides such as ``lr=1e-4``
(dotted for nesting: ``data.seed=7``) and reports any mistake with the file, line and field it
concerns and what was expected (``configs/x.yaml:2: unknown field 'valid_fractoin' (did you mean
'valid_fraction'?)``), so a typo never silently falls back to a default. The stage configs live with
their stages (:mod:`melancia.data.config`, :mod:`melancia.training.config`,
:mod:`melancia.evaluation.config`, :mod:`melancia.router.config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from melancia.errors import MelanciaError

T = TypeVar("T")


class ConfigError(MelanciaError, ValueError):
    """A config value is missing, unknown or of the wrong type; the message says where.

    ``field`` names the field concerned (dotted from the top of the config once located), so the
    loader can point at its line; None when the error is about no single field.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def check(ok: bool, name: str, expected: str, got: Any) -> None:
    """Raise ``ConfigError`` for field ``name`` unless ``ok``: ``name: expected <expected>, got <got>``."""
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {got!r}", field=name)


# --------------------------------------------------------------------------- loading


def load_config(cls: type[T], path: Path | str | None = None, overrides: list[str] | None = None) -> T:
    """Build ``cls`` from a YAML file (optional) and ``key=value`` overrides (dotted for nesting)."""
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    where = "<defaults>"
    if path is not None:
        path = Path(path)
        where = str(path)
        raw, lines = _read_yaml(path)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, e.g. seed=7")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({getattr(exc, 'problem', exc)}); "
                              "quote it, e.g. key='[\"a b?\"]'") from None
        _set_dotted(raw, key.strip(), parsed)
        lines[key.strip()] = 0
    return from_dict(cls, raw, where=where, lines=lines)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a YAML file")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of field: value at the top level")
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines)
    return data, lines


def _collect_lines(node: yaml.Node | None, prefix: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            out[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key + ".", out)


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    target = raw
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"override {dotted!r}: {part} is not a section")
    target[parts[-1]] = value


def from_dict(cls: type[T], raw: dict[str, Any], *, where: str = "<dict>",
              lines: dict[str, int] | None = None, prefix: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``raw``, coercing and checking each field."""
    lines = lines or {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{_loc(where, lines, dotted)}: unknown field {dotted!r}{hint}; "
                              f"expected one of {sorted(known)}")
        kwargs[key] = _coerce(hints[key], value, where, lines, dotted)
    missing = [name for name, f in known.items() if name not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        section = prefix.rstrip(".")
        raise ConfigError(f"{_loc(where, lines, section) if section else where}: missing field "
                          f"{prefix + missing[0]!r}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if exc.field is None:
            raise ConfigError(f"{_loc(where, lines, prefix.rstrip('.')) if prefix else where}: {exc}") from None
        raise ConfigError(f"{_loc(where, lines, prefix + exc.field)}: {prefix}{exc}",
                          field=prefix + exc.field) from None


def _loc(where: str, lines: dict[str, int], dotted: str) -> str:
    line = lines.get(dotted)
    if line == 0:
        return "override"
    return f"{where}:{line}" if line else where


def _coerce(tp: Any, value: Any, where: str, lines: dict[str, int], dotted: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    fail = ConfigError(f"{_loc(where, lines, dotted)}: field {dotted!r} expected {_type_name(tp)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where, lines, dotted)
            except ConfigError:
                continue
        raise fail
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise fail
        item_type = args[0] if args else Any
        return [_coerce(item_type, v, where, lines, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise fail
        return {str(k): _coerce(args[1], v, where, lines, f"{dotted}.{k}") if args else v for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{_loc(where, lines, dotted)}: field {dotted!r} expected one of "
                              f"{list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail
        return from_dict(tp, value, where=where, lines=lines, prefix=dotted + ".")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise fail from None
        raise fail
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail
    if tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise fail
    raise fail


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             Path: "a path", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def to_dict(config: Any) -> dict[str, Any]:
    """A YAML/JSON-friendly dict of a config (paths as strings), e.g. for MLflow params."""
    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value
    return convert(dataclasses.asdict(config))
