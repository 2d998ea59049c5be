import pytest

from melancia.data import schema


def good(**changes):
    record = {"id": "x-1", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"},
                                        {"role": "assistant", "content": "A."}],
              "metadata": {"category": "metricas", "source": "t", "must_include": ["ACOS|acos"]}}
    record.update(changes)
    return record


def test_valid_example_has_no_problems():
    assert schema.problems(good()) == []


@pytest.mark.parametrize("record, expected", [
    ([1, 2], "expected a JSON object, got list"),
    ({k: v for k, v in good().items() if k != "id"}, "missing field 'id'"),
    (good(id=""), "field 'id': expected a non-empty string"),
    (good(messages="hi"), "field 'messages': expected a list, got str"),
    (good(messages=[{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]),
     "messages[0].role: expected one of"),
    (good(messages=[{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]),
     "messages[0].content: expected a string, got int"),
    (good(messages=[{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]),
     "messages[0].content: is empty"),
    (good(messages=[{"role": "user", "content": "q"}]), "at least one user turn followed by an assistant"),
    (good(messages=[{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}]),
     "messages[1].role: expected 'assistant'"),
    (good(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "q2"}]), "the last turn must be the assistant's answer"),
    (good(messages=[{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                    {"role": "assistant", "content": "a"}]), "a system message may only come first"),
    (good(metadata={"source": "t"}), "metadata.category: expected a non-empty string"),
    (good(metadata={"category": "c", "source": "t", "must_include": "ACOS"}), "metadata.must_include"),
    (good(metadata=None) | {"metadata": None}, "missing field 'metadata'"),
    (good(extra=1), "unknown field(s) ['extra']"),
])
def test_each_rule_is_reported(record, expected):
    assert any(expected in p for p in schema.problems(record)), schema.problems(record)


@pytest.mark.parametrize("text, expected", [
    ("pre\x07ço", "control characters"),
    ("pre\ufffdo", "U+FFFD"),
    ("preÃ§o", "mojibake"),
])
def test_encoding_damage_is_reported(text, expected):
    record = good(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": text}])
    assert any(expected in p for p in schema.problems(record))


def test_accented_portuguese_is_not_mojibake():
    assert schema.text_problems("NÃO, ÂNCORA, ação, São Paulo, R$ 1.234,56") == []


def test_normalise_ignores_case_accents_and_punctuation():
    assert schema.normalise("  Qual é o ACOS?! ") == schema.normalise("qual e o acos")
    assert schema.normalise("12,5%") == "12 5%"


def test_accessors_take_last_turns():
    record = good(messages=[{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}])
    assert schema.question(record) == "q2"
    assert schema.answer(record) == "a2"


@pytest.mark.parametrize("term, text, present", [
    ("ACOS|Advertising Cost of Sale", "o acos é 20%", True),
    ("20%", "ACOS de 120%", False),
    ("20%", "ACOS de 20%.", True),
    ("negativ", "use palavras negativas", True),
    ("negativ", "sem negativação", True),
    ("equilíbrio", "ACOS de equilibrio", True),
    ("R$ 1.000|R$ 1000", "vendeu R$ 1.000,00", True),
    ("2", "ROAS de 25", False),
    ("", "qualquer", False),
])
def test_term_present(term, text, present):
    assert schema.term_present(term, text) is present
