"""Typed experiment configs: dataclasses loaded from YAML with ``key=value`` overrides.

Each config is a plain dataclass whose fields are documented in place and checked in
``__post_init__``. :func:`load_config` reads a YAML file, applies overrides such as
``train.lr=1e-4`` and reports any mistake with the file, line and field it concerns and what
was expected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from melancia.errors import MelanciaError

T = TypeVar("T")

DEFAULT_SYSTEM_PROMPT = (
    "Você é a MelancIA, especialista em Retail Media Ads e e-commerce no Brasil (Mercado Livre, "
    "Amazon, Magalu e Shopee). Responda em português, de forma clara, objetiva e focada em ações práticas."
)
PACKAGED_MODEL = "packaged:smollm2"


class ConfigError(MelanciaError, ValueError):
    """A config value is missing, unknown or of the wrong type; the message says where."""


@dataclass
class DataConfig:
    """How ``melancia data build`` turns the bundled (or your) material into splits."""

    corpus_dir: Path | None = Path("data/corpus")
    """Folder of Markdown/HTML posts turned into examples (None: no posts)."""
    qa_paths: list[Path] = field(default_factory=lambda: [Path("data/datasets/train")])
    """Q&A files or folders (JSONL in ChatML or question/answer columns, CSV) for training."""
    heldout_paths: list[Path] = field(default_factory=lambda: [Path("data/datasets/eval")])
    """Curated held-out examples used only by the evaluation gate, never for training."""
    out_dir: Path | None = None
    """Where the splits go; None means MELANCIA_HOME/datasets."""
    tokenizer: str = PACKAGED_MODEL
    """Tokenizer that measures lengths: the target model (hub id, local dir, GGUF or packaged:NAME)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System prompt put in front of examples built from posts and plain Q&A rows."""
    max_tokens: int = 1024
    """Longest example accepted, in tokens of ``tokenizer`` with its chat template."""
    answer_token_budget: int = 160
    """Answers built from post sections are trimmed at a sentence boundary to this many tokens."""
    min_answer_words: int = 12
    """Post sections shorter than this many words do not become examples."""
    valid_fraction: float = 0.1
    """Share of the training pool kept aside (stratified by category) for eval loss during training."""
    near_duplicate_threshold: float = 0.8
    """Estimated Jaccard similarity (character 5-grams) above which two texts count as duplicates."""
    seed: int = 42
    """Seed of the split; the same seed and data give the same splits."""

    def __post_init__(self) -> None:
        _check(0 < self.max_tokens <= 131072, "max_tokens", "an integer in 1..131072", self.max_tokens)
        _check(8 <= self.answer_token_budget <= self.max_tokens, "answer_token_budget",
               "an integer between 8 and max_tokens", self.answer_token_budget)
        _check(0.0 <= self.valid_fraction < 0.5, "valid_fraction", "a number in [0, 0.5)", self.valid_fraction)
        _check(0.0 < self.near_duplicate_threshold <= 1.0, "near_duplicate_threshold",
               "a number in (0, 1]", self.near_duplicate_threshold)
        _check(self.min_answer_words >= 1, "min_answer_words", "an integer >= 1", self.min_answer_words)


def _check(ok: bool, name: str, expected: str, got: Any) -> None:
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {got!r}")


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
        field_name = str(exc).split(":", 1)[0]
        raise ConfigError(f"{_loc(where, lines, prefix + field_name)}: {prefix}{exc}") from None


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


@dataclass
class LoraSettings:
    """Low-rank adapter shape (PEFT ``LoraConfig``)."""

    r: int = 16
    """Rank of the update matrices."""
    alpha: int = 32
    """Scaling numerator: the update is multiplied by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt, or ["all-linear"] for every linear layer but the output head."""
    use_dora: bool = False
    """Weight-decomposed low-rank adaptation (DoRA) instead of plain LoRA."""

    def __post_init__(self) -> None:
        _check(1 <= self.r <= 1024, "r", "an integer in 1..1024", self.r)
        _check(self.alpha >= 1, "alpha", "an integer >= 1", self.alpha)
        _check(0.0 <= self.dropout < 1.0, "dropout", "a number in [0, 1)", self.dropout)
        _check(bool(self.target_modules), "target_modules", "at least one module name", self.target_modules)


@dataclass
class ExportSettings:
    """What a finished run leaves next to its adapter."""

    merged: bool = True
    """Merge the adapter into an unquantised copy of the base and save it as safetensors."""
    gguf: bool = True
    """Convert the merged model to GGUF for llama.cpp, with an Ollama Modelfile (needs ``merged``)."""
    gguf_type: typing.Literal["f32", "f16", "q8_0"] = "f16"
    """Precision of the GGUF weights (q8_0 is half the size; small models lose quality to it)."""

    def __post_init__(self) -> None:
        _check(self.merged or not self.gguf, "gguf", "false when merged is false (GGUF is made from the merged model)",
               self.gguf)


@dataclass
class TrackingSettings:
    """Where the run is recorded."""

    tracking_uri: str | None = None
    """MLflow tracking URI; None: $MLFLOW_TRACKING_URI, else sqlite in MELANCIA_HOME."""
    experiment: str = "melancia-sft"
    """MLflow experiment name."""
    registered_model: str | None = "melancia-assistant"
    """Registered model that receives the result as a new version; None: do not register."""


@dataclass
class TrainConfig:
    """How ``melancia train`` fine-tunes a chat model on the ChatML splits."""

    base_model: str = PACKAGED_MODEL
    """Model to fine-tune: packaged:NAME, a .gguf file, a local Hugging Face folder or a hub id."""
    method: typing.Literal["lora", "qlora"] = "lora"
    """lora: adapters on float weights; qlora: adapters on a 4-bit NF4 base (CUDA + bitsandbytes)."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """Adapter shape."""
    dataset_dir: Path | None = None
    """Folder holding train.jsonl and valid.jsonl; None means MELANCIA_HOME/datasets."""
    output_dir: Path | None = None
    """Where checkpoints and exports go; None means MELANCIA_HOME/runs/<run_name>."""
    run_name: str = "smollm2-lora"
    """Name of the run (folder, MLflow run name)."""
    max_seq_length: int = 1024
    """Examples longer than this are truncated (and dropped when no answer token is left)."""
    tokens_per_batch: int = 4096
    """Token budget of one packed micro-batch (padding-free: examples are concatenated up to it)."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step; the loss is normalised by the trainable tokens of the whole step."""
    epochs: float = 1.0
    """Passes over the training split (fractions allowed)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs when set)."""
    learning_rate: float = 2e-4
    """Peak learning rate of AdamW."""
    lr_scheduler: typing.Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup."""
    warmup_ratio: float = 0.05
    """Share of the steps spent warming up linearly from zero."""
    weight_decay: float = 0.0
    """AdamW weight decay on the adapter weights."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    eval_every: int = 20
    """Compute the eval loss on valid.jsonl every this many steps (and at the end)."""
    eval_examples: int | None = None
    """Evaluate on the first N examples of valid.jsonl only (None: all of them)."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without improvement (0 disables)."""
    save_every: int = 20
    """Write a resumable checkpoint every this many steps."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (the best adapter is always kept)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30% slower."""
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when available, else CPU."""
    seed: int = 42
    """Seed of adapter init, data order and dropout (CPU runs are deterministic)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System prompt written into the Modelfile and model card (the data already carries it)."""
    export: ExportSettings = field(default_factory=ExportSettings)
    """Exports made at the end."""
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    """MLflow tracking and registry."""

    def __post_init__(self) -> None:
        _check(16 <= self.max_seq_length <= 131072, "max_seq_length", "an integer in 16..131072", self.max_seq_length)
        _check(self.tokens_per_batch >= self.max_seq_length, "tokens_per_batch",
               f"an integer >= max_seq_length ({self.max_seq_length})", self.tokens_per_batch)
        _check(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "an integer >= 1",
               self.gradient_accumulation_steps)
        _check(self.epochs > 0, "epochs", "a number > 0", self.epochs)
        _check(self.max_steps is None or self.max_steps >= 1, "max_steps", "null or an integer >= 1", self.max_steps)
        _check(0 < self.learning_rate < 1, "learning_rate", "a number in (0, 1)", self.learning_rate)
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        _check(self.max_grad_norm >= 0, "max_grad_norm", "a number >= 0", self.max_grad_norm)
        for name in ("eval_every", "save_every", "keep_checkpoints"):
            _check(getattr(self, name) >= 1, name, "an integer >= 1", getattr(self, name))
        _check(self.eval_examples is None or self.eval_examples >= 1, "eval_examples", "null or an integer >= 1",
               self.eval_examples)
        _check(self.early_stopping_patience >= 0, "early_stopping_patience", "an integer >= 0",
               self.early_stopping_patience)
        _check(bool(self.run_name.strip()) and "/" not in self.run_name, "run_name", "a name without '/'",
               self.run_name)


GATE_METRICS = ("rougeL", "semantic_similarity", "bertscore_f1", "fact_coverage", "perplexity", "latency_p50_s",
                "latency_p95_s", "tokens_per_s", "judge_score")


@dataclass
class GateCheck:
    """One condition the candidate must meet to be promoted."""

    metric: str
    """Aggregate metric of the report, e.g. fact_coverage, rougeL, perplexity, latency_p95_s."""
    min: float | None = None
    """The candidate's value must be at least this."""
    max: float | None = None
    """The candidate's value must be at most this (perplexity, latency)."""
    min_delta: float | None = None
    """candidate - baseline must be at least this (negative allows a bounded regression)."""
    max_delta: float | None = None
    """candidate - baseline must be at most this (e.g. latency may grow by at most this much)."""

    def __post_init__(self) -> None:
        _check(self.metric in GATE_METRICS, "metric", f"one of {list(GATE_METRICS)}", self.metric)
        bounds = (self.min, self.max, self.min_delta, self.max_delta)
        _check(any(b is not None for b in bounds), "min", "at least one of min, max, min_delta, max_delta", None)


@dataclass
class JudgeSettings:
    """Optional LLM-as-judge through any OpenAI-compatible endpoint."""

    base_url: str | None = None
    """Endpoint of the judge (None: no judge)."""
    model: str = "gpt-4o-mini"
    """Model name at the endpoint."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key (may be unset for local servers)."""
    prompt: Path | None = None
    """Judge prompt with {question}, {reference}, {answer}; None: the versioned prompts/judge_v1.md."""


@dataclass
class EvalConfig:
    """How ``melancia eval`` compares a candidate with a baseline and decides promotion."""

    dataset: Path | None = None
    """ChatML JSONL whose last assistant turn is the reference; None: MELANCIA_HOME/datasets/heldout.jsonl."""
    max_examples: int | None = None
    """Evaluate only the first N examples (None: all)."""
    max_tokens: int = 160
    """Longest generated answer, in tokens."""
    temperature: float = 0.0
    """0: greedy (deterministic); above 0: sampled with ``seed``."""
    seed: int = 0
    """Sampling seed (ignored when greedy)."""
    gguf_type: typing.Literal["f32", "f16", "q8_0"] = "f16"
    """Precision a Hugging Face model is exported to when it must run through llama.cpp."""
    perplexity: bool = True
    """Compute the perplexity of each reference under each model."""
    semantic: bool = True
    """Semantic similarity and BERTScore with the packaged MiniLM."""
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    """Optional LLM-as-judge."""
    gate: list[GateCheck] = field(default_factory=list)
    """Every check must pass for the candidate to be promoted (empty: no gate)."""
    retrieval_queries: Path | None = None
    """Labelled queries (query + relevant document ids) to also evaluate the knowledge index; None: skip."""
    retrieval_k: int = 5
    """Cut-off of recall@k and MRR for the retrieval evaluation."""
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    """MLflow experiment (the training run's, so evaluations sit next to it)."""

    def __post_init__(self) -> None:
        _check(self.max_examples is None or self.max_examples >= 1, "max_examples", "null or an integer >= 1",
               self.max_examples)
        _check(1 <= self.max_tokens <= 8192, "max_tokens", "an integer in 1..8192", self.max_tokens)
        _check(0.0 <= self.temperature <= 2.0, "temperature", "a number in [0, 2]", self.temperature)
