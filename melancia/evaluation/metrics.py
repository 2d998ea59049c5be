"""Answer-quality metrics for the evaluation gate: lexical, factual, semantic and statistical.

- :func:`rouge_l`: ROUGE-L F-measure over :func:`words`, a tokenizer that keeps Portuguese accents
  (``rouge_score``'s default tokenizer keeps only ``[a-z0-9]``, so "análise" would become "an lise").
  Words compare exactly after lowercasing: "ação" and "acao" are different words.
- :func:`fact_coverage`: which ``must_include`` terms an answer contains, with the same term
  matching as the data pipeline (:func:`melancia.data.schema.term_present`: case- and
  accent-insensitive, whole words, numbers by value across Brazilian and English formats).
- :class:`Embedder`: cosine similarity of sentence embeddings and BERTScore, both from the packaged
  all-MiniLM-L6-v2 sentence-transformers model, loaded on first use and run on CPU by default.
- :func:`perplexity`, :func:`percentile`, :func:`aggregate`: small numeric helpers for reports.

Every function is deterministic and has no side effects.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from melancia.data import schema
from melancia.models.embeddings import sentence_model

_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+")


# --------------------------------------------------------------------------- ROUGE


def words(text: str) -> list[str]:
    """Lowercased words and numbers of ``text`` (Unicode NFC), the tokens ROUGE compares.

    Accented letters stay inside their word ("análise", "promoção"); a number keeps its separators
    and stays one token ("1.000,50"); punctuation and symbols are dropped ("12,5%" -> "12,5").
    """
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


class _WordsTokenizer:
    """Adapter giving :func:`words` the ``tokenize`` method ``rouge_score`` expects."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)


@lru_cache(maxsize=1)
def _rouge_l_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordsTokenizer())


def rouge_l(answer: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of :func:`words`) of ``answer`` against ``reference``.

    0.0 when either text has no words; 1.0 when both have the same words in the same order.
    """
    if not words(answer) or not words(reference):
        return 0.0
    return float(_rouge_l_scorer().score(reference, answer)["rougeL"].fmeasure)


# --------------------------------------------------------------------------- facts


def has_facts(must_include: Sequence[str] | None) -> bool:
    """Whether an example lists at least one non-empty ``must_include`` term.

    Examples without terms score 1.0 in :func:`fact_coverage`; callers leave them out of aggregates.
    """
    return any(_is_term(term) for term in must_include or [])


def _is_term(term: str) -> bool:
    return bool(term.strip("| "))


def fact_coverage(answer: str, must_include: Sequence[str]) -> tuple[float, list[str]]:
    """Share of ``must_include`` terms present in ``answer``, and the missing terms in their order.

    A term may hold alternatives split by ``|`` (any one counts). Matching is
    :func:`melancia.data.schema.term_present`: case- and accent-insensitive ("Ação" = "acao"), on
    whole words ("ROAS" is not in "ROASX"; a term's last word may take a plural or inflection ending),
    numbers by value ("1.000" = "1000" = "1,000", "12,5" = "12.5", "R$ 1.000,00" = "R$1000",
    "20%" = "20 %" = "20,0%"; a separator followed by exactly three digits groups thousands).
    Blank terms are ignored; with no terms at all the result is ``(1.0, [])`` (see :func:`has_facts`).
    """
    terms = [term for term in must_include if _is_term(term)]
    if not terms:
        return 1.0, []
    tokens = schema.comparable_tokens(answer)
    missing = [term for term in terms if not schema.term_in_tokens(term, tokens)]
    return (len(terms) - len(missing)) / len(terms), missing


# --------------------------------------------------------------------------- embeddings


class Embedder:
    """Semantic similarity and BERTScore from one sentence-transformers model (loaded on first use).

    ``model_path`` is a local sentence-transformers folder; the default is the packaged
    all-MiniLM-L6-v2 (English-trained, 384 dimensions; texts longer than 256 word pieces are
    truncated). Nothing is downloaded.
    """

    def __init__(self, model_path: str | None = None, *, device: str = "cpu", batch_size: int = 32):
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loads it the first time)."""
        if self._model is None:
            self._model = sentence_model(self.model_path, self.device)
        return self._model

    def semantic_similarity(self, answers: Sequence[str], references: Sequence[str]) -> list[float]:
        """Cosine similarity of the normalised sentence embeddings of each answer and its reference.

        One value per pair, in [-1, 1]; 0.0 where the answer or the reference is empty.
        """
        scored = _scored_pairs(answers, references)
        results = [0.0] * len(answers)
        if not scored:
            return results
        texts = [answers[i] for i in scored] + [references[i] for i in scored]
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        for k, index in enumerate(scored):
            cosine = float(vectors[k] @ vectors[len(scored) + k])
            results[index] = max(-1.0, min(1.0, cosine))
        return results

    def bertscore(self, answers: Sequence[str], references: Sequence[str]) -> list[tuple[float, float, float]]:
        """BERTScore (precision, recall, F1) of each answer against its reference (Zhang et al., 2020).

        Contextual token embeddings come from this model's transformer; [CLS] and [SEP] are dropped
        (padding never reaches us: the model trims it). Each answer token is greedily matched to its
        most similar reference token by cosine similarity (precision) and each reference token to its
        most similar answer token (recall); F1 is their harmonic mean. Plain BERTScore: no idf
        weighting and no baseline rescaling, so unrelated texts still score well above 0.
        ``(0.0, 0.0, 0.0)`` where the answer or the reference is empty.
        """
        scored = _scored_pairs(answers, references)
        results = [(0.0, 0.0, 0.0)] * len(answers)
        if not scored:
            return results
        texts = [answers[i] for i in scored] + [references[i] for i in scored]
        tokens = self.model.encode(texts, batch_size=self.batch_size, output_value="token_embeddings",
                                   show_progress_bar=False)
        for k, index in enumerate(scored):
            results[index] = greedy_match(_content_tokens(tokens[k]), _content_tokens(tokens[len(scored) + k]))
        return results


def _scored_pairs(answers: Sequence[str], references: Sequence[str]) -> list[int]:
    """Indices of the pairs worth embedding (both texts non-blank); refuses lists of different lengths."""
    if len(answers) != len(references):
        raise ValueError(f"got {len(answers)} answers for {len(references)} references")
    return [i for i, (a, r) in enumerate(zip(answers, references, strict=True)) if a.strip() and r.strip()]


def _content_tokens(embeddings: Any) -> Any:
    """Token embeddings without the leading [CLS] and trailing [SEP], as float32 on CPU."""
    return embeddings[1:-1].detach().float().cpu()


def greedy_match(candidate: Any, reference: Any) -> tuple[float, float, float]:
    """BERTScore (precision, recall, F1) of two ``(tokens, dim)`` embedding tensors, greedy cosine matching."""
    import torch

    if len(candidate) == 0 or len(reference) == 0:
        return 0.0, 0.0, 0.0
    similarity = torch.nn.functional.normalize(candidate, dim=-1) @ torch.nn.functional.normalize(reference, dim=-1).T
    precision = float(similarity.max(dim=1).values.mean())
    recall = float(similarity.max(dim=0).values.mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


# --------------------------------------------------------------------------- numbers


def perplexity(token_logprobs: Sequence[float]) -> float:
    """exp(-mean log-probability) of generated tokens (natural log); nan when there are none."""
    if not token_logprobs:
        return math.nan
    mean = math.fsum(token_logprobs) / len(token_logprobs)
    try:
        return math.exp(-mean)
    except OverflowError:
        return math.inf


def percentile(values: Sequence[float], q: float) -> float:
    """``numpy.percentile`` (linear interpolation, ``q`` in 0-100), nan for no values (a report field)."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be between 0 and 100, got {q}")
    return float(np.percentile(values, q)) if len(values) else math.nan


def aggregate(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are present (None and nan are skipped); None when none is present."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return None
    return math.fsum(present) / len(present)
