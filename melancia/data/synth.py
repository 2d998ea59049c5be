"""``melancia data synth``: grow the training set with a teacher model.

Two kinds of new examples, both marked ``source: synthetic`` with the id of what they came from:

* paraphrases of curated questions (the curated answer is kept, so facts stay verified),
* new questions and answers written from one corpus section at a time (grounded in that text).

Everything the teacher returns goes through the same validation, deduplication (against the
existing training data too) and held-out leak check as curated data; synthetic examples only ever
join the training split. Replies that cannot be parsed are reported, never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from melancia.data import schema
from melancia.data.build import build_from_qa, chat_record, slugify, top_sections
from melancia.data.dedupe import Duplicate, dedupe, remove_leaks
from melancia.data.documents import DOCUMENT_SUFFIXES, Document, parse_document
from melancia.data.io import atomic_write_text, expand_inputs, write_jsonl
from melancia.data.tokens import TokenCounter, chat_counter
from melancia.data.validate import validate_files, validate_records
from melancia.models.loading import load_tokenizer
from melancia.providers.base import Provider, ProviderError

PROMPT_VERSION = "synth-v1"
SYNTHETIC = schema.SYNTHETIC_SOURCE

PARAPHRASE_PROMPT = """Reescreva a pergunta abaixo de {n} formas diferentes, em português do Brasil, como um \
analista de e-commerce perguntaria (varie o tom: formal, informal, direto). Mantenha exatamente o mesmo \
sentido e os mesmos números. Responda somente com uma lista JSON de {n} strings.

Pergunta: {question}"""

NEW_QA_PROMPT = """Com base APENAS no texto entre <texto> e </texto>, escreva {n} pares de pergunta e resposta \
em português do Brasil para treinar um assistente de Retail Media. Cada resposta tem de 35 a 120 palavras, \
começa respondendo diretamente e usa só fatos do texto. Em "must_include" liste de 2 a 4 termos ou números \
que a resposta contém. Responda somente com uma lista JSON de objetos com as chaves "question", "answer" e \
"must_include".

<texto>
{title} — {heading}
{text}
</texto>"""


@dataclass
class SynthResult:
    examples: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    removed: list[Duplicate] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def _json_list(reply: str) -> list[Any]:
    """The first JSON array in a teacher reply (models like to wrap it in prose or fences)."""
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        raise ValueError("no JSON list in the reply")
    try:
        value = json.loads(reply[start:end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON list ({exc.msg})") from None
    if not isinstance(value, list):
        raise ValueError("reply is not a JSON list")
    return value


def paraphrases(provider: Provider, record: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    question = schema.question(record)
    reply = provider.chat([{"role": "user", "content": PARAPHRASE_PROMPT.format(n=n, question=question)}],
                          max_tokens=120 * n, temperature=0.8, seed=seed).text
    items = [q.strip() for q in _json_list(reply) if isinstance(q, str) and q.strip()]
    if not items:
        raise ValueError("the list holds no question strings")
    out = []
    for k, new_question in enumerate(items[:n], start=1):
        messages = [dict(m) for m in record["messages"]]
        messages[-2] = {"role": "user", "content": new_question}
        metadata = {**record["metadata"], "source": SYNTHETIC, "origin": record["id"], "prompt": PROMPT_VERSION}
        out.append({"id": f"syn-para-{record['id']}-{k}", "messages": messages, "metadata": metadata})
    return out


def grounded_questions(provider: Provider, document: Document, heading: str, text: str, n: int,
                       system_prompt: str, seed: int) -> list[dict[str, Any]]:
    prompt = NEW_QA_PROMPT.format(n=n, title=document.title, heading=heading or document.title, text=text)
    reply = provider.chat([{"role": "user", "content": prompt}], max_tokens=260 * n, temperature=0.7, seed=seed).text
    out = []
    for k, item in enumerate(_json_list(reply)[:n], start=1):
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in ("question", "answer")):
            raise ValueError(f"item {k} is not an object with question and answer strings")
        must = [t for t in item.get("must_include") or [] if isinstance(t, str) and t.strip()]
        must = [t for t in must if schema.term_present(t, item["answer"])]
        origin = f"{document.id}#{slugify(heading) if heading else 'introducao'}"
        metadata = {"category": document.category, "source": SYNTHETIC, "origin": origin, "prompt": PROMPT_VERSION,
                    **({"must_include": must} if must else {})}
        out.append(chat_record(f"syn-new-{origin.replace('#', '-')}-{k}", system_prompt, item["question"].strip(),
                               item["answer"].strip(), metadata))
    return out


def synthesize(provider: Provider, *, curated: list[dict[str, Any]], documents: Iterable[Document],
               system_prompt: str, paraphrases_per_example: int = 2, questions_per_section: int = 2,
               min_section_words: int = 40, seed: int = 42, show_progress: bool = True) -> SynthResult:
    """Ask the teacher for new examples; one failed request or reply never stops the others."""
    result = SynthResult()
    jobs: list[tuple[str, Any]] = []
    if paraphrases_per_example > 0:
        jobs += [(r["id"], lambda r=r, i=i: paraphrases(provider, r, paraphrases_per_example, seed + i))
                 for i, r in enumerate(curated) if schema.source(r) != SYNTHETIC and len(r["messages"]) <= 3]
    if questions_per_section > 0:
        for document in documents:
            for j, section in enumerate(top_sections(document)):
                if len(section.text.split()) >= min_section_words:
                    jobs.append((f"{document.id}#{section.heading or 'introducao'}",
                                 lambda d=document, s=section, j=j: grounded_questions(
                                     provider, d, s.heading, s.text, questions_per_section, system_prompt, seed + j)))
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress, transient=True) as bar:
        task = bar.add_task("synth", total=len(jobs), rate="")
        for done, (origin, job) in enumerate(jobs, start=1):
            try:
                result.examples.extend(job())
            except (ProviderError, ValueError) as exc:
                result.failures.append(f"{origin}: {exc}")
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(task, advance=1, rate=f"{done / elapsed:.2f} req/s")
    return result


def screen(result: SynthResult, *, existing: list[dict[str, Any]], heldout: list[dict[str, Any]],
           count_tokens: TokenCounter | None, max_tokens: int, threshold: float) -> SynthResult:
    """Validate, dedupe (against ``existing`` too) and leak-check the synthetic examples in place."""
    if not result.examples:
        return result
    report = validate_records(result.examples, count_tokens=count_tokens, max_tokens=max_tokens)
    result.rejected += [f"{r.path}: {r.reason}" for r in report.rejected]
    existing_ids = {r["id"] for r in existing}
    kept, removed = dedupe(existing + report.valid, threshold)
    fresh = [r for r in kept if r["id"] not in existing_ids]
    fresh, leaks = remove_leaks(fresh, heldout, threshold)
    result.removed = [d for d in removed if d.record["id"] not in existing_ids] + leaks
    result.examples = fresh
    return result


def grow(provider: Provider, config: Any, out: Any, *, tokenizer: Any = None, paraphrases_per_example: int = 2,
         questions_per_section: int = 2, limit: int | None = None, show_progress: bool = True) -> SynthResult:
    """Synthesise from the curated Q&A and corpus named by a :class:`~melancia.data.config.DataConfig`,
    screen the result and write it (plus a report of everything left out) to ``out``."""

    if tokenizer is None:
        tokenizer = load_tokenizer(config.tokenizer)
    curated = build_from_qa(config.qa_paths, system_prompt=config.system_prompt).examples
    documents = [parse_document(p) for p in expand_inputs([config.corpus_dir], DOCUMENT_SUFFIXES)] \
        if config.corpus_dir else []
    if limit is not None:
        curated, documents = curated[:limit], documents[:limit]
    heldout = validate_files(config.heldout_paths).valid
    result = synthesize(provider, curated=curated, documents=documents, system_prompt=config.system_prompt,
                        paraphrases_per_example=paraphrases_per_example, questions_per_section=questions_per_section,
                        min_section_words=config.min_answer_words, seed=config.seed, show_progress=show_progress)
    screen(result, existing=curated, heldout=heldout, count_tokens=chat_counter(tokenizer),
           max_tokens=config.max_tokens, threshold=config.near_duplicate_threshold)
    out = Path(out)
    write_jsonl(out, result.examples)
    report = {"written": len(result.examples), "failed_requests": result.failures, "rejected": result.rejected,
              "removed": [str(d) for d in result.removed], "prompt_version": PROMPT_VERSION}
    atomic_write_text(out.with_suffix(".report.json"), json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return result
