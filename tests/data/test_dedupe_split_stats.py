import json
from collections import Counter

from melancia.data.dedupe import dedupe, remove_leaks
from melancia.data.split import split
from melancia.data.stats import describe, plot


def ex(rid, question, answer="Resposta padrão sobre retail media.", category="metricas"):
    return {"id": rid, "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "metadata": {"category": category, "source": "t"}}


def test_exact_duplicates_ignore_case_accents_and_punctuation():
    kept, removed = dedupe([ex("a", "O que é ACOS?"), ex("b", "o que e acos"), ex("c", "O que é ROAS?")])
    assert [r["id"] for r in kept] == ["a", "c"]
    assert (removed[0].record["id"], removed[0].of_id, removed[0].kind) == ("b", "a", "exact")


def test_near_duplicates_are_removed_and_distinct_texts_kept():
    base = "Como calcular o ACOS de uma campanha de Product Ads no Mercado Livre com orçamento diário?"
    near = "Como calcular o ACOS de uma campanha de Product Ads no Mercado Livre com orçamento diario"
    other = "Quais formatos de anúncio a Amazon oferece para marcas registradas no Brasil?"
    kept, removed = dedupe([ex("a", base), ex("b", near + " ?"), ex("c", other)])
    assert [r["id"] for r in kept] == ["a", "c"]
    assert removed[0].kind in ("near", "exact") and removed[0].of_id == "a"


def test_paraphrase_with_same_answer_and_same_question_with_other_answer_are_kept():
    answer = "O ACOS é 20%: R$ 200 de investimento divididos por R$ 1.000 de vendas, vezes 100."
    other_numbers = "O ACOS é 30%: R$ 300 de investimento divididos por R$ 1.000 de vendas, vezes 100."
    kept, removed = dedupe([ex("a", "Gastei R$ 200 e vendi R$ 1.000, qual meu ACOS?", answer),
                            ex("b", "Qual o ACOS de uma campanha que investiu R$ 200 para vender R$ 1.000?", answer),
                            ex("c", "Gastei R$ 300 e vendi R$ 1.000, qual meu ACOS?", other_numbers)])
    assert [r["id"] for r in kept] == ["a", "b", "c"] and removed == []


def test_leaks_into_heldout_are_removed_from_training():
    heldout = [ex("h1", "Qual a diferença entre ACOS e TACOS na prática para um seller?")]
    train = [ex("t1", "Qual a diferença entre ACOS e TACOS na pratica para um seller"),
             ex("t2", "Como montar um painel semanal de KPIs?")]
    kept, leaked = remove_leaks(train, heldout)
    assert [r["id"] for r in kept] == ["t2"]
    assert (leaked[0].record["id"], leaked[0].of_id, leaked[0].kind) == ("t1", "h1", "leak")


def test_split_is_deterministic_and_stratified():
    records = [ex(f"m{i}", f"Pergunta única número {i} sobre métricas {i * 7919}", category="metricas") for i in range(40)]
    records += [ex(f"p{i}", f"Questão distinta {i} sobre plataformas {i * 104729}", category="plataformas") for i in range(20)]
    train, valid = split(records, 0.25, seed=3)
    assert Counter(r["metadata"]["category"] for r in valid) == {"metricas": 10, "plataformas": 5}
    assert split(records, 0.25, seed=3) == (train, valid)
    assert split(records, 0.25, seed=4)[1] != valid
    assert {r["id"] for r in train} | {r["id"] for r in valid} == {r["id"] for r in records}


def test_near_duplicate_questions_land_on_the_same_side():
    q = "Como reduzir o ACOS das campanhas de Product Ads no Mercado Livre sem perder vendas?"
    records = [ex("a", q), ex("b", q.replace("?", " agora?")), ex("c", q.replace("vendas", "vendas!!"))]
    records += [ex(f"x{i}", f"Tema diferente número {i} sobre métricas {i * 31337}") for i in range(9)]
    for seed in range(10):
        train, valid = split(records, 0.3, seed=seed)
        sides = {("train" if r in train else "valid") for r in records[:3]}
        assert len(sides) == 1


def test_small_category_still_gets_one_validation_example():
    records = [ex("a", "Pergunta A longa o bastante", category="rara"), ex("b", "Outra pergunta bem diferente", category="rara")]
    assert len(split(records, 0.1, seed=1)[1]) == 1


def test_stats_counts_and_png(tmp_path, tiny_tokenizer):
    from melancia.data.tokens import chat_counter

    records = [ex("a", "O que é ACOS?"), ex("b", "E ROAS?", category="plataformas")]
    records[1]["messages"] = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}] + records[1]["messages"]
    stats = describe(records, chat_counter(tiny_tokenizer))
    assert stats["examples"] == 2 and stats["multi_turn"] == 1
    assert stats["by_category"] == {"metricas": 1, "plataformas": 1}
    assert stats["tokens"]["min"] < stats["tokens"]["max"] and len(stats["tokens"]["lengths"]) == 2
    plot({"train": stats}, tmp_path / "stats.png")
    assert (tmp_path / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(stats)
