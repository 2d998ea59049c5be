import json
import re
from pathlib import Path

from melancia.data.config import DataConfig
from melancia.data.io import load_examples
from melancia.data.pipeline import build_datasets
from melancia.data.synth import PARAPHRASE_PROMPT, grow
from melancia.providers import Provider, ProviderError

FIXTURE = Path(__file__).parent / "fixture"


def teacher_reply(messages):
    prompt = messages[-1]["content"]
    if prompt.startswith(PARAPHRASE_PROMPT[:30]):
        question = prompt.rsplit("Pergunta: ", 1)[1]
        if "TACOS" in question:
            return "Desculpe, não consigo."  # an unusable reply: must be reported, not dropped silently
        if "ROI" in question:  # the teacher paraphrases into a held-out question: a leak
            return json.dumps(["Como se calcula o CPA de uma campanha?"])
        return "Claro! ```json\n" + json.dumps([f"Pode me explicar: {question}", f"Me diga, {question.lower()}"]) + "\n```"
    heading = re.search(r"<texto>\n.* — (.*)\n", prompt).group(1)
    answer = (f"Sobre {heading}: o investimento em anúncios dividido pela receita atribuída mostra a eficiência, "
              "e o resultado deve ser comparado com a margem do produto antes de mudar lances ou orçamento.")
    return json.dumps([{"question": f"Qual a ideia principal de {heading}?", "answer": answer,
                        "must_include": ["investimento", "termo que não está na resposta"]}])


def config(tmp_path):
    return DataConfig(corpus_dir=FIXTURE / "posts", qa_paths=[FIXTURE / "qa" / "chat.jsonl"],
                      heldout_paths=[FIXTURE / "heldout.jsonl"], out_dir=tmp_path / "out", min_answer_words=5)


def test_synth_writes_screened_synthetic_examples(tmp_path, tiny_tokenizer, fake_provider):
    teacher = fake_provider(teacher_reply)
    assert isinstance(teacher, Provider)
    out = tmp_path / "syn.jsonl"
    result = grow(teacher, config(tmp_path), out, tokenizer=tiny_tokenizer, paraphrases_per_example=2,
                  questions_per_section=1, show_progress=False)
    written = load_examples(out)
    assert written == result.examples and written
    assert all(r["metadata"]["source"] == "synthetic" and r["metadata"]["origin"] for r in written)
    para = [r for r in written if r["id"].startswith("syn-para-")]
    ctr = next(r for r in para if "CTR" in r["messages"][-2]["content"])
    assert ctr["messages"][-1]["content"].startswith("CTR é a taxa de cliques")  # the verified answer is kept
    new = [r for r in written if r["id"].startswith("syn-new-")]
    assert new and all(r["metadata"]["must_include"] == ["investimento"] for r in new)  # unmatched term dropped
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert any(f.startswith("fx-001: no JSON list") for f in report["failed_requests"])
    assert any("leak" in line and "fx-eval-001" in line for line in report["removed"])
    assert not any("CPA" in r["messages"][-2]["content"] for r in written)


def test_failed_requests_are_reported(tmp_path, tiny_tokenizer, fake_provider):
    teacher = fake_provider(fail_with=ProviderError("teacher: cannot connect to http://x"))
    result = grow(teacher, config(tmp_path), tmp_path / "s.jsonl", tokenizer=tiny_tokenizer, show_progress=False)
    assert result.examples == [] and len(result.failures) == len(teacher.calls) > 0
    assert "cannot connect" in result.failures[0]


def test_synthetic_rows_only_ever_join_training(tmp_path, tiny_tokenizer, fake_provider):
    out = tmp_path / "syn.jsonl"
    grow(fake_provider(teacher_reply), config(tmp_path), out, tokenizer=tiny_tokenizer, questions_per_section=1,
         show_progress=False)
    cfg = config(tmp_path)
    cfg.qa_paths = [FIXTURE / "qa" / "chat.jsonl", out]
    cfg.valid_fraction = 0.4
    summary = build_datasets(cfg, tokenizer=tiny_tokenizer)
    assert any(r["metadata"]["source"] == "synthetic" for r in summary.splits["train"])
    assert not any(r["metadata"]["source"] == "synthetic" for r in summary.splits["valid"] + summary.splits["heldout"])
