"""The data stage's config: what ``melancia data build`` turns into splits, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from melancia.config import check
from melancia.models.loading import PACKAGED_MODEL
from melancia.models.persona import DEFAULT_SYSTEM_PROMPT


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
        check(0 < self.max_tokens <= 131072, "max_tokens", "an integer in 1..131072", self.max_tokens)
        check(8 <= self.answer_token_budget <= self.max_tokens, "answer_token_budget",
               "an integer between 8 and max_tokens", self.answer_token_budget)
        check(0.0 <= self.valid_fraction < 0.5, "valid_fraction", "a number in [0, 0.5)", self.valid_fraction)
        check(0.0 < self.near_duplicate_threshold <= 1.0, "near_duplicate_threshold",
               "a number in (0, 1]", self.near_duplicate_threshold)
        check(self.min_answer_words >= 1, "min_answer_words", "an integer >= 1", self.min_answer_words)
